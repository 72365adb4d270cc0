/** Starts a Node.js edge node in-process: the library's counterpart of `edgefed node`. */
import { Agent, type AgentOptions } from './agent.js';

/** Connects (enrolling first when given a join token) and answers the coordinator's requests until `stop()`. */
export async function startNode(options: AgentOptions): Promise<Agent> {
  const agent = new Agent(options);
  await agent.start();
  return agent;
}

#!/usr/bin/env node
/**
 * `edgefed node` on its own: bin/edgefed.mjs starts here instead of main.ts when the command is `node`, so an
 * edge device loads the node's modules only (not the coordinator, the simulator, fastify, SQLite or the
 * other commands: about 20 MB of resident memory on a node training the traffic GRU, bench/node-memory.ts).
 */
import { addNodeCommand } from './node-cmd.js';
import { newProgram, runProgram } from './program.js';

const program = newProgram();
addNodeCommand(program);
await runProgram(program);

/** `edgefed sim-worker`: a process that hosts simulated nodes for runs started with `simulate --queue`. */
import type { Command } from 'commander';
import { intArg, UsageError } from './args.js';
import { DEFAULT_QUEUE_NAME_TEXT, QUEUE_NAME_PATTERN, redisConnection } from '../sim/queue-url.js';

export function addQueueCommands(program: Command): void {
  program
    .command('sim-worker')
    .description(
      'host simulated edge nodes for `edgefed simulate --queue` runs (BullMQ on Redis), on this or another machine',
    )
    .requiredOption('--redis <url>', 'the Redis server of the queue, e.g. redis://10.0.0.5:6379')
    .option('--queue-name <name>', 'BullMQ queue name', DEFAULT_QUEUE_NAME_TEXT)
    .option('--concurrency <n>', 'jobs at once (training is CPU-bound: one per core)', intArg(1, 64), 1)
    .addHelpText(
      'after',
      `
Examples:
  redis-server --port 6379 &
  edgefed sim-worker --redis redis://127.0.0.1:6379 &      # on every machine that should train
  edgefed simulate --nodes 20 --rounds 10 --queue redis://127.0.0.1:6379`,
    )
    .action(async (f: { redis: string; queueName: string; concurrency: number }) => {
      try {
        redisConnection(f.redis);
      } catch (e) {
        throw new UsageError(`--redis: ${(e as Error).message}`);
      }
      if (!QUEUE_NAME_PATTERN.test(f.queueName))
        throw new UsageError(`--queue-name: letters, digits, _ . - (at most 64), got '${f.queueName}'`);
      const { startQueueWorker } = await import('../sim/queue.js');
      const w = await startQueueWorker({ redis: f.redis, queueName: f.queueName, concurrency: f.concurrency });
      process.stdout.write(`${JSON.stringify({ worker: w.worker, queue: f.queueName, redis: f.redis })}\n`);
      const stop = () => void w.close().then(() => process.exit(0));
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
    });
}

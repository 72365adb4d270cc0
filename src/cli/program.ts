/**
 * The `edgefed` program's frame, shared by the full command line (main.ts) and the node's own entry
 * (node-main.ts): name, version, how errors print, and the exit codes (2 for bad input, 1 for a failure).
 */
import { Command, CommanderError } from 'commander';
import { UsageError } from './args.js';
import { packageVersion } from './version.js';

export function newProgram(): Command {
  return new Command('edgefed')
    .description('Federated deep learning at the edge: partition, train, fuse and predict.')
    .version(packageVersion(), '-V, --version', 'print the version of edgefed')
    .exitOverride()
    .configureOutput({ outputError: (s, write) => write(`edgefed: ${s.replace(/^error: /, '').trim()}\n`) });
}

/** Parses process.argv and runs the command; a bad flag or file prints one line `edgefed: ...` and exits 2. */
export async function runProgram(program: Command): Promise<void> {
  try {
    await program.parseAsync(process.argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      process.exit(e.exitCode === 0 || e.code === 'commander.helpDisplayed' || e.code === 'commander.version' ? 0 : 2);
    }
    process.stderr.write(`edgefed: ${(e as Error).message.split('\n')[0]}\n`);
    process.exit(e instanceof UsageError ? 2 : 1);
  }
}

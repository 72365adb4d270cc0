#!/usr/bin/env node
// Runs the test files named on the command line, two at a time, in the order given. `node --test FILES` would
// sort them by path, and a long file that happens to sort last keeps one core busy alone at the end;
// run-tests.mjs passes the longest files first instead. Start it as `node --import tsx scripts/run-test-files.mjs`:
// each file runs in its own process, which inherits --import tsx. TAP when piped (as `node --test` prints), spec
// on a terminal; exit code 1 when any test (todo tests aside) or file fails.
import { run } from 'node:test';
import { spec, tap } from 'node:test/reporters';
import { resolve } from 'node:path';

const files = process.argv.slice(2).map((f) => resolve(f));
if (files.length === 0) {
  console.error('run-test-files: no test files given');
  process.exit(2);
}
const stream = run({ files, concurrency: 2 });
stream.on('test:fail', (event) => {
  // As `node --test`: a failing todo test is reported and does not fail the run.
  if (!event.todo) process.exitCode = 1;
});
stream.compose(process.stdout.isTTY ? new spec() : tap).pipe(process.stdout);

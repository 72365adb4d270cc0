// The connections bench's command line: node flags for the coordinator process alone (V8 heap experiments).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCli } from '../bench/connections/options.js';

test('bench:connections passes --coordinator-node-flags to the coordinator process only, split on spaces', () => {
  assert.deepEqual(parseCli([]).coordinatorNodeFlags, []);
  const a = parseCli(['--coordinator-node-flags=--max-semi-space-size=32  --trace-gc']);
  assert.deepEqual(a.coordinatorNodeFlags, ['--max-semi-space-size=32', '--trace-gc']);
  assert.equal(parseCli(['--coordinator-stdout', 'gc.log']).coordinatorStdout?.endsWith('/gc.log'), true);
});

test('bench:connections refuses a coordinator flag that is not a flag, naming it', () => {
  assert.throws(
    () => parseCli(['--coordinator-node-flags=--trace-gc max-semi-space-size=32']),
    /--coordinator-node-flags: expected flags starting with --, got 'max-semi-space-size=32'/,
  );
});

test("bench:connections leaves the coordinator's --worker-nice to its default unless given, and checks it", () => {
  assert.equal(parseCli([]).workerNice, null);
  assert.equal(parseCli(['--worker-nice', '0']).workerNice, 0);
  assert.equal(parseCli(['--worker-nice', '19']).workerNice, 19);
  assert.throws(() => parseCli(['--worker-nice', '20']), /--worker-nice: expected 0 to 19, got 20/);
  assert.throws(() => parseCli(['--worker-nice=-1']), /--worker-nice: expected a whole number >= 0, got '-1'/);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { chooseLogFormat } from './logger.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

test('chooseLogFormat: pretty on a terminal, json elsewhere, a flag wins, a bad value is a usage error', () => {
  delete process.env.EDGEFED_LOG_FORMAT;
  assert.equal(chooseLogFormat(undefined, true), 'pretty');
  assert.equal(chooseLogFormat(undefined, false), 'json');
  assert.equal(chooseLogFormat('json', true), 'json');
  assert.throws(() => chooseLogFormat('xml', false), /--log-format: expected json or pretty, got 'xml'/);
});

/** A real logger in a child process: what lands on its stderr in each format. */
function logLine(format: string): string {
  const code = `import { makeLogger } from './src/cli/logger.ts'; makeLogger({ format: '${format}', base: { node: 'n1' } }).info({ round: 3 }, 'joined');`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  return r.stderr.trim();
}

test('makeLogger writes JSON lines, or readable lines with pino-pretty', () => {
  const json = JSON.parse(logLine('json'));
  assert.equal(json.msg, 'joined');
  assert.equal(json.node, 'n1');
  const pretty = logLine('pretty');
  assert.match(pretty, /INFO.*joined/);
  assert.match(pretty, /round: 3/);
  assert.throws(() => JSON.parse(pretty));
});

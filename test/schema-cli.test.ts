// `edgefed schema run` prints the run config's JSON Schema, and the simulate flags match the simulation options schema.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RunConfigSchema } from '../src/coordinator/config.js';
import { SimulationOptionsSchema } from '../src/sim/options.js';
import { strategyNames } from '../src/engine/strategies/index.js';
import { runCli } from './helpers.js';

test('edgefed schema run: the JSON Schema of a run config, strategies listed from the registry', async () => {
  const r = await runCli(['schema', 'run']);
  assert.equal(r.code, 0, r.stderr);
  const schema = JSON.parse(r.stdout) as {
    properties: Record<string, { description?: string }>;
    additionalProperties: boolean;
  };
  assert.deepEqual(Object.keys(schema.properties).sort(), Object.keys(RunConfigSchema.shape).sort());
  assert.equal(schema.additionalProperties, false, 'unknown fields are refused');
  for (const name of strategyNames())
    assert.match(schema.properties.strategy.description ?? '', new RegExp(`\\b${name}\\b`), name);
  const bad = await runCli(['schema', 'nope']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^edgefed: schema: unknown kind 'nope' \(one of run, simulate\)\n$/);
});

test('every simulation option has a simulate flag and every flag an option (checked against the schema)', async () => {
  const r = await runCli(['simulate', '--help']);
  assert.equal(r.code, 0, r.stderr);
  const flags = new Set([...r.stdout.matchAll(/^\s+(?:-\w, )?--([a-z0-9-]+)/gm)].map((m) => m[1]));
  // Output flags shape what is printed, not the run; --validation is validationFraction's flag.
  for (const output of ['out', 'json', 'quiet', 'help']) flags.delete(output);
  const renamed: Record<string, string> = { validationFraction: 'validation' };
  const expected = Object.keys(SimulationOptionsSchema.shape).map(
    (k) => renamed[k] ?? k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`),
  );
  assert.deepEqual([...flags].sort(), expected.sort());
});

test('deploy/run-config.example.jsonc is what `edgefed schema run --example` prints, and it is a valid run config', async () => {
  const { readFileSync } = await import('node:fs');
  const { parseRunConfig } = await import('../src/coordinator/config.js');
  const { stripLineComments } = await import('../src/cli/example-config.js');
  const r = await runCli(['schema', 'run', '--example']);
  assert.equal(r.code, 0, r.stderr);
  const committed = readFileSync(new URL('../deploy/run-config.example.jsonc', import.meta.url), 'utf8');
  assert.equal(committed, r.stdout, 'regenerate with: edgefed schema run --example > deploy/run-config.example.jsonc');
  const config = parseRunConfig(JSON.parse(stripLineComments(committed)));
  assert.equal(config.model, 'mlp');
  for (const key of ['strategy', 'rounds', 'minNodes', 'roundTimeoutMs', 'compression'])
    assert.match(committed, new RegExp(`"${key}"`));
});

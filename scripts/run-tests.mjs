#!/usr/bin/env node
// Runs the test suites with node's own test runner (tsx loads TypeScript).
// `unit`: tests beside the code (src/**/*.test.ts, web/**/*.test.ts); `integration`: test/*.test.ts;
// `slow`: test/slow/*.test.ts (long accuracy runs); `browser`: test/browser/*.test.ts (headless Chromium).
// No argument: unit + integration.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function find(dir, recurse) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) {
      if (recurse && name !== 'dist' && name !== 'node_modules') out.push(...find(p, recurse));
    } else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out.sort();
}

const which = process.argv[2] ?? 'default';
const suites = {
  unit: () => [...find('src', true), ...find('web', true)],
  integration: () => find('test', false),
  slow: () => find('test/slow', false),
  browser: () => find('test/browser', false),
};
const files = which === 'default' ? [...suites.unit(), ...suites.integration()] : suites[which]?.();
if (!files) {
  console.error(`unknown suite '${which}' (unit, integration, slow, browser)`);
  process.exit(2);
}
if (files.length === 0) {
  console.error(`suite '${which}' has no test files`);
  process.exit(1);
}
// The browser tests build their own page; the WASM kernels they share are built once here, before they run side by side.
if (which === 'browser') {
  const built = spawnSync(process.execPath, ['scripts/build-web.mjs'], { stdio: 'inherit' });
  if (built.status !== 0) process.exit(built.status ?? 1);
}
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', ...files], {
  stdio: 'inherit',
});
process.exit(r.status ?? 1);

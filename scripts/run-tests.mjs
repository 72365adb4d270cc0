#!/usr/bin/env node
// Runs the test suites with node's own test runner (tsx loads TypeScript).
// `unit`: tests beside the code (src/**/*.test.ts, web/**/*.test.ts); `integration`: test/*.test.ts;
// `slow`: test/slow/*.test.ts (long accuracy runs); `browser`: test/browser/*.test.ts (headless Chromium).
// No argument: unit + integration.
import { readdirSync, statSync } from 'node:fs';
import { join, sep } from 'node:path';
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
// The tests start many edgefed processes (CLI runs, coordinators, nodes, their worker threads): loading the sources
// through tsx costs each about as much CPU again as the run itself. They run the JavaScript built from the same
// sources here, now, into test-build/ (not dist/: the package test's `npm pack` rebuilds that); bin/edgefed.mjs
// takes it when EDGEFED_BUILT names it. A test file run on its own (no EDGEFED_BUILT) starts the sources as before.
const built = spawnSync(process.execPath, ['scripts/build-lib.mjs', '--out', 'test-build'], { stdio: 'inherit' });
if (built.status !== 0) process.exit(built.status ?? 1);
// The browser tests build their own page; the WASM kernels they share are built once here, before they run side by side.
if (which === 'browser') {
  const web = spawnSync(process.execPath, ['scripts/build-web.mjs'], { stdio: 'inherit' });
  if (web.status !== 0) process.exit(web.status ?? 1);
}
// The files that take longest (timed one by one and in CI), started first: two files run at a time, and a long
// file started last would keep one core busy alone at the end. The rest follow in path order. A name here that
// no longer exists is simply not run (it is not in `files`); keep the list to the slowest dozen or so.
const LONGEST_FIRST = [
  'test/readme-commands.test.ts',
  'test/deploy.test.ts',
  'test/cli.test.ts',
  'test/lifecycle.test.ts',
  'test/mqtt.test.ts',
  'test/hierarchy.test.ts',
  'test/package.test.ts',
  'src/model/onnx/int8-export.test.ts',
  'test/up.test.ts',
  'test/heterogeneity-cli.test.ts',
  'src/model/trainers.test.ts',
  'test/node-state-deploy.test.ts',
  'test/quantize-cli.test.ts',
  'test/deploy-resume.test.ts',
  'test/queue.test.ts',
  'test/standardize-deploy.test.ts',
];
const rank = (f) => {
  const i = LONGEST_FIRST.indexOf(f.split(sep).join('/'));
  return i < 0 ? LONGEST_FIRST.length : i;
};
const ordered = files.map((f, i) => ({ f, i })).sort((a, b) => rank(a.f) - rank(b.f) || a.i - b.i);
const r = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/run-test-files.mjs', ...ordered.map((o) => o.f)], {
  stdio: 'inherit',
  env: { ...process.env, EDGEFED_BUILT: 'test-build' },
});
process.exit(r.status ?? 1);

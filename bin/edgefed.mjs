#!/usr/bin/env node
// Entry point for the `edgefed` command. An installed package has no src/: it runs the built JavaScript in
// dist/ (no TypeScript loader, faster start). A checkout always runs its sources through tsx, so an edit
// is never shadowed by a stale dist/. `edgefed node` starts from its own entry, which loads the node's
// modules only: an edge device's memory is not spent on the coordinator and the other commands.
import { existsSync } from 'node:fs';

const entry = process.argv[2] === 'node' ? 'node-main' : 'main';
const sources = new URL(`../src/cli/${entry}.ts`, import.meta.url);
// EDGEFED_BUILT=test-build: run the JavaScript `npm test` has just built from these sources into that folder
// (scripts/run-tests.mjs), so the many processes the tests start skip compiling TypeScript as they load.
const built = process.env.EDGEFED_BUILT;
if (built && existsSync(sources)) {
  await import(new URL(`../${built}/cli/${entry}.js`, import.meta.url).href);
} else if (existsSync(sources)) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(sources.href);
} else {
  await import(`../dist/cli/${entry}.js`);
}

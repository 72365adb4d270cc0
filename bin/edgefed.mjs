#!/usr/bin/env node
// Entry point for the `edgefed` command. An installed package has no src/: it runs the built JavaScript in
// dist/ (no TypeScript loader, faster start). A checkout always runs its sources through tsx, so an edit
// is never shadowed by a stale dist/.
import { existsSync } from 'node:fs';

const sources = new URL('../src/cli/main.ts', import.meta.url);
if (existsSync(sources)) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(sources.href);
} else {
  await import('../dist/cli/main.js');
}

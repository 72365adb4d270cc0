#!/usr/bin/env node
// npm's install lifecycle, for a checkout and for an installed package alike.
// A checkout (src/ and tsconfig.build.json present, devDependencies installed by `npm ci`) builds everything:
// the native addon, the WASM kernels, the dashboard, the browser-node page and the library (dist/): nothing is
// built when a command runs.
// An installed package ships dist/, the built WASM kernels and pages, and the addon's C++ sources: it builds
// only the addon (with npm's own node-gyp and OpenBLAS when present; otherwise one warning, TypeScript/WASM
// kernels), since its consumer has none of the devDependencies the other builds need.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const checkout = existsSync(join(root, 'src')) && existsSync(join(root, 'tsconfig.build.json'));

function run(args) {
  const r = spawnSync(args[0], args.slice(1), { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

run([process.execPath, join(root, 'scripts', 'build-native.mjs')]);
if (checkout) {
  run([process.execPath, join(root, 'scripts', 'build-wasm.mjs')]);
  run([process.execPath, join(root, 'node_modules', 'vite', 'bin', 'vite.js'), 'build', 'web/dashboard']);
  run([process.execPath, join(root, 'scripts', 'build-web.mjs'), 'node']);
  run([process.execPath, join(root, 'scripts', 'build-lib.mjs')]);
}

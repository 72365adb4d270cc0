#!/usr/bin/env node
// Builds the library into dist/: tsc -p tsconfig.build.json (JavaScript and .d.ts for src/, tests left out,
// imports rewritten from .ts to .js), then copies the plain .mjs files under src/ that the JavaScript loads
// (the worker-thread boot file). dist/ is emptied first, so a deleted source leaves no stale module behind.
// Fails (exit 1) on a type error: a library that does not type-check is not shipped.
// `--out DIR` builds the JavaScript alone (no .d.ts) into DIR, a folder beside src/ so the paths the modules
// resolve from their own location (../../wasm, ../../native, ../../package.json) still hold: npm test builds the
// CLI it spawns into test-build/ this way, apart from dist/, which `npm pack` in the package test rebuilds.
import { cpSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const srcDir = join(root, 'src');
const outAt = process.argv.indexOf('--out');
const outName = outAt < 0 ? 'dist' : process.argv[outAt + 1];
if (!outName || outName.includes('/') || outName.includes('\\') || outName.startsWith('.') || outName === 'src') {
  console.error(`build-lib: --out takes a folder name beside src/ (e.g. test-build), got '${outName ?? ''}'`);
  process.exit(2);
}
const distDir = join(root, outName);
const jsOnly = outAt >= 0 ? ['--outDir', distDir, '--declaration', 'false'] : [];

function plainModules(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return plainModules(path);
    return name.endsWith('.mjs') ? [path] : [];
  });
}

rmSync(distDir, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const built = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json'), ...jsOnly], {
  stdio: 'inherit',
});
if (built.status !== 0) {
  console.error(`build-lib: tsc failed (see above); ${outName}/ is incomplete`);
  process.exit(1);
}
for (const file of plainModules(srcDir)) cpSync(file, join(distDir, relative(srcDir, file)));
console.log(`build-lib: built ${relative(process.cwd(), distDir) || distDir}`);

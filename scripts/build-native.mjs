#!/usr/bin/env node
// Builds the OpenBLAS kernels addon (native/) into native/build/Release/edgefed_kernels.node.
// Runs from npm's install lifecycle, so it never fails: without a compiler, OpenBLAS or Node headers it
// prints one warning line (training then uses the TypeScript kernels) and exits 0.
// Options: --force rebuilds even when the addon is newer than its sources; EDGEFED_SKIP_NATIVE=1 skips.
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';

const nativeDir = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'native');
const output = join(nativeDir, 'build', 'Release', 'edgefed_kernels.node');
const logFile = join(nativeDir, 'build-native.log');
// Every source and header decides whether the addon is stale, so an edit to any of them triggers a rebuild.
const sources = readdirSync(nativeDir)
  .filter((f) => /\.(gyp|cc|h)$/.test(f))
  .map((f) => join(nativeDir, f));

function warn(reason) {
  console.warn(`edgefed: native kernels not built (${reason}); training will use the TypeScript kernels.`);
  process.exit(0);
}

/** node-gyp: npm names its bundled copy in lifecycle scripts; otherwise look beside this node. */
function findNodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    join(
      dirname(process.execPath),
      '..',
      'lib',
      'node_modules',
      'npm',
      'node_modules',
      'node-gyp',
      'bin',
      'node-gyp.js',
    ),
    join(dirname(process.execPath), 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ];
  try {
    candidates.push(createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js'));
  } catch {
    /* not a dependency; fine */
  }
  return candidates.find((p) => p && existsSync(p)) ?? null;
}

/**
 * A directory with Node's headers (include/node/node_api.h and common.gypi), so node-gyp need not
 * download them (there may be no network). Same major version preferred; Node-API is ABI-stable anyway.
 */
function findNodeDir() {
  const prefixes = [process.config?.variables?.node_prefix, join(dirname(process.execPath), '..'), '/usr', '/usr/local']
    .filter(Boolean)
    .map((p) => resolve(p));
  const usable = [...new Set(prefixes)].filter(
    (p) =>
      existsSync(join(p, 'include', 'node', 'node_api.h')) && existsSync(join(p, 'include', 'node', 'common.gypi')),
  );
  const major = process.versions.node.split('.')[0];
  const sameMajor = usable.find((p) => {
    try {
      return new RegExp(`#define NODE_MAJOR_VERSION ${major}\\b`).test(
        readFileSync(join(p, 'include', 'node', 'node_version.h'), 'utf8'),
      );
    } catch {
      return false;
    }
  });
  return sameMajor ?? usable[0] ?? null;
}

function upToDate() {
  if (!existsSync(output)) return false;
  const built = statSync(output).mtimeMs;
  return sources.every((s) => statSync(s).mtimeMs <= built);
}

/** The first line of the build log that says what went wrong, for the one-line warning. */
function firstError(log) {
  const lines = log.split('\n');
  const compiler = lines.find(
    (l) => !/ERR!/.test(l) && /fatal error|cannot find -l|No such file|not found|error:/i.test(l),
  );
  if (compiler)
    return compiler
      .replace(/^.*?(fatal error|error:)/i, '$1')
      .trim()
      .slice(0, 160);
  const gyp = lines.find((l) => /ERR! stack Error:/.test(l)) ?? lines.find((l) => /ERR!/.test(l));
  return gyp
    ? `node-gyp: ${gyp
        .replace(/^.*ERR!\s*(stack\s+)?(Error:\s*)?/, '')
        .trim()
        .slice(0, 160)}`
    : 'see log';
}

/** Loads the fresh addon in a child process and runs a 2x2 gemm, so a broken link shows up now. */
function smokeTest() {
  const code = `const k = require(${JSON.stringify(output)});
    const c = new Float32Array(4);
    k.gemm(false, false, 2, 2, 2, 1, new Float32Array([1, 2, 3, 4]), new Float32Array([5, 6, 7, 8]), 0, c);
    if (c.join() !== '19,22,43,50') throw new Error('gemm gave ' + c.join());`;
  const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', timeout: 60_000 });
  return r.status === 0 ? null : (r.stderr.split('\n').find((l) => /Error/.test(l)) ?? `exit ${r.status}`).trim();
}

function main() {
  if (process.env.EDGEFED_SKIP_NATIVE === '1') warn('EDGEFED_SKIP_NATIVE=1');
  if (!process.argv.includes('--force') && upToDate()) {
    console.log(`edgefed: native kernels up to date (${output})`);
    return;
  }
  const nodeGyp = findNodeGyp();
  if (!nodeGyp) warn('node-gyp not found');
  const nodeDir = findNodeDir();
  const args = [nodeGyp, 'rebuild', `--directory=${nativeDir}`, '--jobs=max'];
  if (nodeDir) args.push(`--nodedir=${nodeDir}`);
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 10 * 60_000, maxBuffer: 64 << 20 });
  const log = `$ node ${args.join(' ')}\n${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}`;
  try {
    writeFileSync(logFile, log);
  } catch {
    /* read-only checkout: the warning still says why */
  }
  if (r.status !== 0 || !existsSync(output)) {
    const hint = /cblas\.h|lopenblas/.test(log) ? '; install libopenblas-dev' : '';
    warn(`${firstError(log)}${hint}; log: ${logFile}`);
  }
  const broken = smokeTest();
  if (broken) {
    // Removed so the loader reports it missing and the next run rebuilds instead of trusting it.
    rmSync(output, { force: true });
    warn(`built addon does not load: ${broken}`);
  }
  console.log(`edgefed: native kernels built (${output})`);
}

try {
  main();
} catch (e) {
  warn(`unexpected: ${e instanceof Error ? e.message : String(e)}`);
}

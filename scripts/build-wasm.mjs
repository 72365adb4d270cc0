#!/usr/bin/env node
// Compiles the WebAssembly SIMD kernels (wasm/kernels.ts, AssemblyScript; options in wasm/asconfig.json)
// into wasm/build/kernels.wasm with the installed assemblyscript compiler (a devDependency).
// Runs from npm's install lifecycle, so it never fails: without the compiler, or when compiling or the
// smoke test fails, it prints one warning line (the wasm kernels are then unavailable; the native or
// TypeScript kernels are used) and exits 0.
// Options: --force rebuilds even when the output is newer than its sources; EDGEFED_SKIP_WASM=1 skips.
import { existsSync, mkdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const scriptPath = fileURLToPath(import.meta.url);
const wasmDir = resolve(dirname(scriptPath), '..', 'wasm');
const config = join(wasmDir, 'asconfig.json');
const output = join(wasmDir, 'build', 'kernels.wasm');
const sources = [join(wasmDir, 'kernels.ts'), config, scriptPath];

function warn(reason) {
  console.warn(`edgefed: wasm kernels not built (${reason}); the native or TypeScript kernels will be used.`);
  process.exit(0);
}

/** A failed rebuild removes the old module too: it was built from other sources than the loader expects. */
function fail(reason) {
  try {
    rmSync(output, { force: true });
  } catch {
    /* read-only checkout: the warning still says why */
  }
  warn(reason);
}

function upToDate() {
  if (!existsSync(output)) return false;
  const built = statSync(output).mtimeMs;
  return sources.every((s) => statSync(s).mtimeMs <= built);
}

/** Instantiates the fresh module and runs a 2x2 gemm and an Adam step, so a broken build shows up now. */
async function smokeTest(bytes) {
  const { instance } = await WebAssembly.instantiate(bytes, {});
  const k = instance.exports;
  const base = Math.ceil(k.heapBase() / 64) * 64;
  const data = base + Math.ceil(k.gemmWorkBytes() / 64) * 64;
  if (k.memory.buffer.byteLength < data + 64) k.memory.grow(Math.ceil((data + 64) / 65536));
  const f = new Float32Array(k.memory.buffer, data, 16);
  f.set([1, 2, 3, 4, 5, 6, 7, 8]);
  k.gemm(0, 0, 2, 2, 2, 1, data, 2, data + 16, 2, 0, data + 32, 2, base);
  if (Array.from(f.subarray(8, 12)).join() !== '19,22,43,50')
    return `gemm gave ${Array.from(f.subarray(8, 12)).join()}`;
  return null;
}

async function main() {
  if (process.env.EDGEFED_SKIP_WASM === '1') warn('EDGEFED_SKIP_WASM=1');
  if (!process.argv.includes('--force') && upToDate()) {
    console.log(`edgefed: wasm kernels up to date (${output})`);
    return;
  }
  let asc;
  try {
    asc = await import('assemblyscript/asc');
  } catch {
    warn('the assemblyscript compiler (a devDependency) is not installed');
    return;
  }
  // The compiler writes into memory; the file is replaced only once the module passes the smoke test.
  let binary = null;
  const log = [];
  const sink = {
    write: (s) => {
      log.push(String(s));
      return true;
    },
  };
  const result = await asc.main(['--config', config], {
    stdout: sink,
    stderr: sink,
    writeFile: (name, contents) => {
      if (name.endsWith('.wasm')) binary = contents;
    },
  });
  if (result.error || !binary) {
    const text =
      log
        .join('')
        .split('\n')
        .find((l) => /ERROR|error/.test(l)) ?? (result.error ? result.error.message : 'no output');
    fail(
      `asc failed: ${text
        .replace(/\u001b\[[0-9;]*m/g, '')
        .trim()
        .slice(0, 200)}`,
    );
  }
  const broken = await smokeTest(binary).catch((e) => (e instanceof Error ? e.message : String(e)));
  if (broken) fail(`the compiled module does not work: ${broken}`);
  mkdirSync(dirname(output), { recursive: true });
  const tmp = `${output}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, binary);
    renameSync(tmp, output);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  console.log(`edgefed: wasm kernels built (${output}, ${binary.length} bytes)`);
}

try {
  await main();
} catch (e) {
  warn(`unexpected: ${e instanceof Error ? e.message : String(e)}`);
}

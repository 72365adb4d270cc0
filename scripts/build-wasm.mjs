#!/usr/bin/env node
// Compiles the WebAssembly SIMD kernels (wasm/kernels.ts, AssemblyScript; options in wasm/asconfig.json)
// with the installed assemblyscript compiler (a devDependency) into four builds of the one source:
//   wasm/build/kernels.wasm                 SIMD, own memory (every engine with SIMD)
//   wasm/build/kernels-relaxed.wasm         + relaxed SIMD (fused multiply-add where the CPU has it)
//   wasm/build/kernels-shared.wasm          SIMD, imported shared memory (workers training together)
//   wasm/build/kernels-relaxed-shared.wasm  both
// The loaders pick one by feature detection. A build the engine running this script cannot run (relaxed
// SIMD in Node 20) is smoke-tested in a child Node with the V8 flag that enables it.
// Runs from npm's install lifecycle, so it never fails: without the compiler, or when compiling or the
// smoke test fails, it prints one warning line (the wasm kernels are then unavailable; the native or
// TypeScript kernels are used) and exits 0.
// Options: --force rebuilds even when the output is newer than its sources; EDGEFED_SKIP_WASM=1 skips.
import { existsSync, mkdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const scriptPath = fileURLToPath(import.meta.url);
const wasmDir = resolve(dirname(scriptPath), '..', 'wasm');
const config = join(wasmDir, 'asconfig.json');
const RELAXED = ['--enable', 'relaxed-simd'];
// Shared memory needs the threads feature and a maximum (65536 pages = 4 GiB, what wasm32 can address).
const SHARED = ['--enable', 'threads', '--importMemory', '--sharedMemory', '--maximumMemory', '65536'];
/** The builds: output file, extra asc arguments, whether it needs relaxed SIMD / a shared memory. */
const BUILDS = [
  { file: 'kernels.wasm', args: [], relaxed: false, shared: false },
  { file: 'kernels-relaxed.wasm', args: RELAXED, relaxed: true, shared: false },
  { file: 'kernels-shared.wasm', args: SHARED, relaxed: false, shared: true },
  { file: 'kernels-relaxed-shared.wasm', args: [...RELAXED, ...SHARED], relaxed: true, shared: true },
];
const outputs = BUILDS.map((b) => join(wasmDir, 'build', b.file));
const output = outputs[0];
const sources = [join(wasmDir, 'kernels.ts'), config, scriptPath];

function warn(reason) {
  console.warn(`edgefed: wasm kernels not built (${reason}); the native or TypeScript kernels will be used.`);
  process.exit(0);
}

/** A failed rebuild removes the old module too: it was built from other sources than the loader expects. */
function fail(reason) {
  try {
    for (const o of outputs) rmSync(o, { force: true });
  } catch {
    /* read-only checkout: the warning still says why */
  }
  warn(reason);
}

function upToDate() {
  if (!outputs.every((o) => existsSync(o))) return false;
  const built = Math.min(...outputs.map((o) => statSync(o).mtimeMs));
  return sources.every((s) => statSync(s).mtimeMs <= built);
}

/** Instantiates the fresh module and runs a 2x2 gemm and an Adam step, so a broken build shows up now. */
async function smokeTest(bytes, shared) {
  const memory = shared ? new WebAssembly.Memory({ initial: 128, maximum: 65536, shared: true }) : undefined;
  const { instance } = await WebAssembly.instantiate(bytes, shared ? { env: { memory } } : {});
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
  const built = [];
  for (const b of BUILDS) built.push(await compile(asc, b));
  mkdirSync(dirname(output), { recursive: true });
  for (let i = 0; i < BUILDS.length; i++) {
    const tmp = `${outputs[i]}.${process.pid}.tmp`;
    try {
      writeFileSync(tmp, built[i]);
      renameSync(tmp, outputs[i]);
    } catch (e) {
      rmSync(tmp, { force: true });
      throw e;
    }
  }
  const sizes = BUILDS.map((b, i) => `${b.file} ${built[i].length}`).join(', ');
  console.log(`edgefed: wasm kernels built (${dirname(output)}: ${sizes} bytes)`);
}

/** Compiles one build into memory and smoke-tests it; the files are replaced only once every build passed. */
async function compile(asc, b) {
  let binary = null;
  const log = [];
  const sink = {
    write: (s) => {
      log.push(String(s));
      return true;
    },
  };
  const result = await asc.main(['--config', config, ...b.args], {
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
      `asc failed on ${b.file}: ${text
        .replace(/\u001b\[[0-9;]*m/g, '')
        .trim()
        .slice(0, 200)}`,
    );
  }
  const broken = WebAssembly.validate(binary)
    ? await smokeTest(binary, b.shared).catch((e) => (e instanceof Error ? e.message : String(e)))
    : smokeTestInChild(binary, b.shared);
  if (broken) fail(`the compiled module ${b.file} does not work: ${broken}`);
  return binary;
}

/** Runs the smoke test in a child Node that has relaxed SIMD enabled by its V8 flag (Node 20 ships it off). */
function smokeTestInChild(binary, shared) {
  const code = `const bytes = Buffer.from(process.env.EDGEFED_WASM_B64, 'base64');
${smokeTest.toString()}
smokeTest(bytes, ${shared}).then((r) => { if (r) { console.log(r); process.exit(1); } },
  (e) => { console.log(e.message); process.exit(1); });`;
  const r = spawnSync(process.execPath, ['--experimental-wasm-relaxed-simd', '--input-type=module', '-e', code], {
    encoding: 'utf8',
    env: { ...process.env, EDGEFED_WASM_B64: Buffer.from(binary).toString('base64') },
  });
  if (r.status === 0) return null;
  return (r.stdout || r.stderr || `exit ${r.status}`).trim().split('\n').slice(-1)[0];
}

try {
  await main();
} catch (e) {
  warn(`unexpected: ${e instanceof Error ? e.message : String(e)}`);
}

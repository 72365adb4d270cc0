#!/usr/bin/env node
// Bundles the browser pages with esbuild, each web/<page>/main.ts into web/<page>/dist/ (main.js + source
// map, index.html, web/shared/page.css, the kernels' four builds copied from wasm/build/): the engine check
// (web/engine-check/) and the browser edge node (web/node/, served by the coordinator at /node/).
// Fails loudly (exit 1) when a bundle would pull in a Node module (node:*, or a bare builtin such as
// 'fs'), tfjs, or one of the Node-only EdgeFed files: browser code constructs EngineTrainer with the
// kernels itself, and the browser node runs AgentCore on its own platform (src/node/platform-browser.ts).
// Builds wasm/build/ first (scripts/build-wasm.mjs) when a build is missing.
// `node scripts/build-web.mjs [PAGE...]` builds the named pages only (engine-check, node); default all.
import { builtinModules } from 'node:module';
import { copyFileSync, existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** The pages, each a directory under web/ with main.ts and index.html; arguments pick some (default all). */
const ALL_PAGES = ['engine-check', 'node'];
const PAGES = process.argv.length > 2 ? process.argv.slice(2) : ALL_PAGES;
const WASM_BUILDS = ['kernels.wasm', 'kernels-relaxed.wasm', 'kernels-shared.wasm', 'kernels-relaxed-shared.wasm'];
const wasmPaths = WASM_BUILDS.map((f) => join(root, 'wasm', 'build', f));

/** Files that reach Node or tfjs; the bundle must contain none of them (checked on the metafile too). */
const FORBIDDEN_INPUTS = [
  'src/node/agent.ts',
  'src/node/platform-node.ts',
  'src/node/data.ts',
  'src/net/node-crypto.ts',
  'src/model/make-trainer.ts',
  'src/model/tfjs.ts',
  'src/model/tfjs-trainer.ts',
  'src/model/hash.ts',
  'src/nn/kernels-select.ts',
  'src/nn/kernels-native.ts',
  'src/nn/kernels-wasm-node.ts',
];

function die(message) {
  console.error(`build-web: ${message}`);
  process.exit(1);
}

const escape = (s) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
const bareBuiltins = builtinModules.filter((m) => !m.startsWith('_') && !m.startsWith('node:'));

/** Turns any import of a Node module or tfjs into a build error naming the importing file. */
const browserOnly = {
  name: 'edgefed-browser-only',
  setup(b) {
    const reject = (what) => (args) => ({
      errors: [
        {
          text: `${what} '${args.path}' imported by ${relative(root, args.importer) || args.importer}: the browser bundle must not reach Node or tfjs`,
        },
      ],
    });
    b.onResolve({ filter: /^node:/ }, reject('Node module'));
    b.onResolve({ filter: new RegExp(`^(${bareBuiltins.map(escape).join('|')})(/.*)?$`) }, reject('Node builtin'));
    b.onResolve({ filter: /^@tensorflow\// }, reject('tfjs package'));
  },
};

const unknown = PAGES.filter((p) => !ALL_PAGES.includes(p));
if (unknown.length > 0) die(`unknown page(s) ${unknown.join(', ')}; the pages are ${ALL_PAGES.join(', ')}`);

const wasmMissing = () => wasmPaths.find((p) => !existsSync(p));
if (wasmMissing()) {
  console.log(`build-web: ${relative(root, wasmMissing())} is missing; building the wasm kernels`);
  spawnSync(process.execPath, [join(root, 'scripts', 'build-wasm.mjs')], { stdio: 'inherit' });
  if (wasmMissing())
    die(`${relative(root, wasmMissing())} could not be built (see the warning above); the page needs it`);
}

async function buildPage(page) {
  const pageDir = join(root, 'web', page);
  const outdir = join(pageDir, 'dist');
  rmSync(outdir, { recursive: true, force: true });
  mkdirSync(outdir, { recursive: true });

  const started = Date.now();
  let result;
  try {
    result = await build({
      absWorkingDir: root,
      entryPoints: [join(pageDir, 'main.ts')],
      outdir,
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: 'es2022',
      sourcemap: 'linked',
      metafile: true,
      logLevel: 'silent',
      plugins: [browserOnly],
    });
  } catch (e) {
    // esbuild's BuildFailure carries structured errors; print each with its location.
    const errors = e && Array.isArray(e.errors) ? e.errors : [];
    for (const err of errors) {
      const where = err.location ? `${err.location.file}:${err.location.line}:${err.location.column}: ` : '';
      console.error(`build-web: ${where}${err.text}`);
    }
    rmSync(outdir, { recursive: true, force: true });
    die(
      errors.length
        ? `bundling failed with ${errors.length} error(s)`
        : `bundling failed: ${e instanceof Error ? e.message : String(e)}`,
    );
  }

  for (const w of result.warnings) console.warn(`build-web: warning: ${w.text}`);
  const inputs = Object.keys(result.metafile.inputs);
  const bad = inputs.filter(
    (p) => p.startsWith('node:') || p.includes('@tensorflow/') || FORBIDDEN_INPUTS.includes(p.replaceAll('\\', '/')),
  );
  if (bad.length > 0) {
    rmSync(outdir, { recursive: true, force: true });
    die(`the bundle pulled in Node-only or tfjs code: ${bad.join(', ')}`);
  }

  copyFileSync(join(pageDir, 'index.html'), join(outdir, 'index.html'));
  copyFileSync(join(root, 'web', 'shared', 'page.css'), join(outdir, 'page.css'));
  for (let i = 0; i < WASM_BUILDS.length; i++) copyFileSync(wasmPaths[i], join(outdir, WASM_BUILDS[i]));

  const kb = (p) => (statSync(p).size / 1024).toFixed(1);
  console.log(
    `build-web: ${relative(root, outdir)}/main.js ${kb(join(outdir, 'main.js'))} KiB from ${inputs.length} modules, ` +
      `kernels.wasm ${kb(join(outdir, 'kernels.wasm'))} KiB, in ${Date.now() - started} ms`,
  );
}

for (const page of PAGES) await buildPage(page);

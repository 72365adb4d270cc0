/**
 * The published package, as a user gets it: `npm pack` (its prepack builds dist/, the WASM kernels and the
 * pages), the tarball installed into a fresh project outside the repository, the package's own install script
 * run there, and a TypeScript program (test/package-consumer/) type-checked with tsc against the shipped .d.ts
 * files, compiled, and run with plain node. It defines a strategy through the public API; its 2-round
 * simulations (FedAvg, and that strategy) must give the models the sources give.
 *
 * Offline: the project's node_modules starts as symlinks to this repository's installed packages, so
 * `npm install --offline --ignore-scripts` resolves every dependency without the network (and without running
 * lifecycle scripts in the linked packages); `npm rebuild edgefed` then runs the package's install script alone.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runSimulation } from '../src/sim/simulate.ts';
import { registerStrategy } from '../src/engine/strategies/index.ts';
import { scaledMean } from './support/scaled-mean-strategy.ts';

const repo = fileURLToPath(new URL('..', import.meta.url));
const fixture = fileURLToPath(new URL('./package-consumer/', import.meta.url));
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): SpawnSyncReturns<string> {
  const r = spawnSync(command, args, { cwd, env: { ...process.env, ...env }, encoding: 'utf8', maxBuffer: 64 << 20 });
  assert.equal(r.status, 0, `${command} ${args.join(' ')} in ${cwd} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** node_modules/<name> -> the repository's installed copy, scoped packages one level down. */
function linkInstalledPackages(from: string, to: string): void {
  mkdirSync(to);
  for (const name of readdirSync(from)) {
    if (name.startsWith('.')) continue;
    if (name.startsWith('@')) {
      mkdirSync(join(to, name));
      for (const scoped of readdirSync(join(from, name))) symlinkSync(join(from, name, scoped), join(to, name, scoped));
    } else {
      symlinkSync(join(from, name), join(to, name));
    }
  }
}

// Both runs on the WASM kernels: the tarball ships them built; the native addon is skipped in the consumer.
const kernels = { EDGEFED_KERNELS: 'wasm' };

test('the packed tarball installs offline, type-checks, defines a strategy and simulates 2 rounds like the sources', {
  timeout: 15 * 60_000,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'edgefed-package-'));
  try {
    const packed = run(npm, ['pack', '--json', '--pack-destination', dir], repo);
    const [{ filename, files }] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as [
      { filename: string; files: { path: string }[] },
    ];
    const paths = files.map((f) => f.path);
    for (const shipped of [
      'dist/index.js',
      'dist/index.d.ts',
      'dist/browser.js',
      'dist/browser.d.ts',
      'dist/core/index.js',
      'dist/core/index.d.ts',
      'dist/sim/boot.mjs',
      'bin/edgefed.mjs',
      'scripts/install.mjs',
      'native/kernels.cc',
      'wasm/build/kernels.wasm',
      'web/dashboard/dist/index.html',
      'web/node/dist/main.js',
    ]) {
      assert.ok(paths.includes(shipped), `the tarball lacks ${shipped}`);
    }
    const strays = paths.filter((p) => p.startsWith('src/') || p.startsWith('test/') || p.endsWith('.test.js'));
    assert.deepEqual(strays, [], 'sources and tests stay out of the tarball');

    const project = join(dir, 'consumer');
    mkdirSync(project);
    cpSync(fixture, project, { recursive: true });
    writeFileSync(
      join(project, 'package.json'),
      JSON.stringify(
        {
          name: 'edgefed-consumer',
          private: true,
          type: 'module',
          dependencies: { edgefed: `file:../${filename}`, zod: '4.6.7' },
          devDependencies: { typescript: '5.9.3', '@types/node': '20.19.43' },
        },
        null,
        2,
      ),
    );
    linkInstalledPackages(realpathSync(join(repo, 'node_modules')), join(project, 'node_modules'));
    run(npm, ['install', '--offline', '--ignore-scripts', '--no-audit', '--no-fund'], project);

    const installed = run(npm, ['rebuild', 'edgefed', '--offline', '--foreground-scripts'], project, {
      EDGEFED_SKIP_NATIVE: '1',
    });
    const installLog = installed.stdout + installed.stderr;
    assert.match(installLog, /native kernels not built \(EDGEFED_SKIP_NATIVE=1\)/, 'the install script ran');
    assert.doesNotMatch(installLog, /wasm kernels|vite|build-lib/, 'an installed package builds only the addon');

    run(process.execPath, [join(project, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', '.'], project);
    const ran = run(process.execPath, [join(project, 'out', 'consumer.js')], project, kernels);
    const printed = JSON.parse(ran.stdout.trim().split('\n').at(-1)!) as {
      rounds: number[];
      modelSha256: string;
      trainer: string;
      partition: string;
      average: number[];
      random: number;
      registered: boolean;
      ownStrategy: { rounds: number[]; fusions: number; modelSha256: string };
    };
    assert.deepEqual(printed.rounds, [1, 2]);
    assert.deepEqual(printed.average, [2, 4]);
    assert.equal(printed.partition, 'dirichlet');
    assert.ok(printed.registered);
    assert.deepEqual(printed.ownStrategy.rounds, [1, 2]);
    assert.equal(printed.ownStrategy.fusions, 2, 'the consumer-defined strategy fused both rounds');
    assert.notEqual(printed.ownStrategy.modelSha256, printed.modelSha256);

    process.env.EDGEFED_KERNELS = kernels.EDGEFED_KERNELS;
    const fromSources = await runSimulation({
      nodes: 2,
      rounds: 2,
      limitTrain: 400,
      limitTest: 200,
      workers: 1,
      seed: 1,
      partition: 'iid',
      strategy: 'fedavg',
    });
    assert.equal(printed.trainer, fromSources.trainer);
    assert.equal(
      printed.modelSha256,
      fromSources.modelSha256,
      'the built library trains the same model as the sources',
    );
    // The same rule defined inside the repository (test/support) gives the same model.
    registerStrategy(scaledMean);
    const ownFromSources = await runSimulation({
      nodes: 2,
      rounds: 2,
      limitTrain: 400,
      limitTest: 200,
      workers: 1,
      seed: 1,
      partition: 'iid',
      strategy: 'scaledmean:eta=0.5',
    });
    assert.equal(printed.ownStrategy.modelSha256, ownFromSources.modelSha256);

    const help = run(
      process.execPath,
      [join(project, 'node_modules', 'edgefed', 'bin', 'edgefed.mjs'), '--help'],
      project,
    );
    assert.match(help.stdout, /Usage: edgefed/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

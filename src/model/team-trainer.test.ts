// Tensor-parallel dense training (TeamEngineTrainer on a native DenseTeam): k threads give the same bits every run,
// one step stays within float rounding of DenseNet and FlatOptimizer on one thread for odd splits (units not divisible
// by k, fewer rows than threads), an epoch of the seed MLP and the 2NN stays within float rounding of EngineTrainer
// with the same accuracy; bad calls are refused before anything is written; a team never keeps a process alive.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { loadMnist } from '../data/mnist.js';
import type { Dataset } from '../data/types.js';
import { firstRows } from '../../test/support/first-rows.js';
import { Rng } from '../core/rng.js';
import { loadNativeKernels, nativeDenseTeam } from '../nn/kernels-native.js';
import { DenseNet, denseTensorSpecs, type DenseNetSpec } from '../nn/dense.js';
import { DenseTeam } from '../nn/dense-team.js';
import { FlatOptimizer, optimizerStateSlots, type OptimizerConfig } from '../nn/optimizer.js';
import { builtinModel, initialWeights, tensorSpecs, type ModelSpec } from './spec.js';
import { EngineTrainer } from './engine-trainer.js';
import { TEAM_MIN_ROWS, TeamEngineTrainer, teamUnsupportedReason } from './team-trainer.js';
import { jsKernels } from '../nn/kernels-js.js';
import type { TrainConfig } from './trainer.js';

const kernels = loadNativeKernels();
const skip = kernels ? false : 'the native kernels are not built';
const mlp = builtinModel('mlp', [28, 28, 1], 10);
const twoNN = builtinModel('2nn', [28, 28, 1], 10);
const OPTIMIZERS: OptimizerConfig[] = [
  { name: 'sgd', lr: 0.05 },
  { name: 'momentum', lr: 0.01, momentum: 0.9 },
  { name: 'adam', lr: 0.002 },
];

/**
 * One step: the team's gemms run on column or row blocks of the single-thread ones, which OpenBLAS may round
 * differently (measured <= 1e-7 on these weights), so one step's weights agree to 1e-5 absolute.
 */
const STEP_TOL = 1e-5;
/**
 * After an epoch: float rounding differences can flip a ReLU whose input is within rounding of zero, which moves
 * the weights it feeds by up to lr * x / B (0.1 / 10 for the 2NN; see EPOCH_TOL in parallel-trainer.test.ts).
 * Measured: 2NN on 605 rows, k = 3 and 4, 1.1e-2 at most and 3.1e-4 on average; one thread alone whose start
 * weights are moved by 3e-8 lands exactly as far (1.1e-2, 3.1e-4); on 600 rows both stay below 2e-7. A wrong
 * slice (a row or column computed twice or never) is caught at 1e-5 by the one-step test above. Test accuracy after
 * this short epoch moves with those flips too (2NN k = 3: 0.522 vs 0.532), hence ACCURACY_TOL.
 */
const ACCURACY_TOL = 0.02;
const EPOCH_TOL = 5e-2;
const EPOCH_MEAN_TOL = 2e-3;
const meanAbsDiff = (a: Float32Array, b: Float32Array) => a.reduce((s, v, i) => s + Math.abs(v - b[i]), 0) / a.length;
/** A module of this checkout as a string literal for code a child process or worker runs. */
const source = (path: string) => JSON.stringify(new URL(path, import.meta.url).href);
const maxAbsDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

let train: Dataset;
let test: Dataset;
before(() => {
  const d = loadMnist();
  train = firstRows(d.train, 605, 'mnist:train[0:605]'); // B = 32 and B = 10 both end on a short batch
  test = firstRows(d.test, 500, 'mnist:test[0:500]');
});

const start = (spec: ModelSpec) => initialWeights(tensorSpecs(spec), new Rng(3));
const cfg = (spec: ModelSpec, batchSize: number, optimizer = spec.optimizer): TrainConfig => ({
  epochs: 1,
  batchSize,
  optimizer,
  proxMu: 0,
  seed: 5,
});

/** A network whose widths divide by no thread count here, with every hidden activation. */
const ODD: DenseNetSpec = {
  inputSize: 37,
  layers: [
    { name: 'a', units: 23, activation: 'relu' },
    { name: 'b', units: 17, activation: 'tanh' },
    { name: 'c', units: 5, activation: 'sigmoid' },
    { name: 'out', units: 7, activation: 'softmax' },
  ],
  loss: 'sparse_categorical_crossentropy',
};
const REGRESSION: DenseNetSpec = {
  inputSize: 9,
  layers: [
    { name: 'h', units: 19, activation: 'relu' },
    { name: 'out', units: 3, activation: 'linear' },
  ],
  loss: 'mse',
};

/** Softmax regression: the top layer is the first, which the team splits and gathers by batch rows. */
const SOFTMAX_ONLY: DenseNetSpec = {
  inputSize: 37,
  layers: [{ name: 'out', units: 7, activation: 'softmax' }],
  loss: 'sparse_categorical_crossentropy',
};

function randomBatch(spec: DenseNetSpec, m: number, seed: number) {
  const rng = new Rng(seed);
  const w = initialWeights(denseTensorSpecs(spec), rng);
  const x = Float32Array.from({ length: m * spec.inputSize }, () => rng.next() * 2 - 1);
  const out = spec.layers[spec.layers.length - 1].units;
  const y =
    spec.loss === 'mse'
      ? Float32Array.from({ length: m * out }, () => rng.next())
      : Int32Array.from({ length: m }, () => Math.floor(rng.next() * out));
  return { w, x, y };
}

/** Three steps on one thread: DenseNet's fused SGD step, or its gradient and FlatOptimizer. */
function oneThreadSteps(spec: DenseNetSpec, opt: OptimizerConfig, b: ReturnType<typeof randomBatch>, m: number) {
  const net = new DenseNet(spec, kernels!);
  const w = b.w.slice();
  const g = new Float32Array(w.length);
  const flat = new FlatOptimizer(opt, kernels!, w.length);
  let loss = 0;
  for (let s = 0; s < 3; s++) {
    if (opt.name === 'sgd') loss = net.sgdStep(w, b.x, b.y, m, opt.lr).loss;
    else {
      loss = net.gradient(w, b.x, b.y, m, g).loss;
      flat.step(w, g);
    }
  }
  return { w, loss };
}

/**
 * Three team steps on the batch; with `pool`, the batch is given as row indices into pool (whose rows `rows` are
 * the batch's), which the team's threads gather.
 */
function teamSteps(
  spec: DenseNetSpec,
  opt: OptimizerConfig,
  b: ReturnType<typeof randomBatch>,
  m: number,
  k: number,
  pool?: { x: Float32Array; rows: Int32Array },
) {
  const team = new DenseTeam(spec, k);
  try {
    const w = b.w.slice();
    const state = Array.from({ length: optimizerStateSlots(opt.name) }, () => new Float32Array(w.length));
    let loss = 0;
    for (let s = 1; s <= 3; s++) {
      loss = pool
        ? team.step(w, pool.x, b.y, m, opt, s, state, pool.rows).loss
        : team.step(w, b.x, b.y, m, opt, s, state).loss;
    }
    return { w, loss };
  } finally {
    team.close();
  }
}

describe('DenseTeam: one step on k threads against one thread', { skip }, () => {
  for (const spec of [ODD, REGRESSION, SOFTMAX_ONLY]) {
    for (const opt of OPTIMIZERS) {
      it(`${spec.loss}, ${opt.name}: k = 1..4, batches of 1, 3 and 29`, () => {
        for (const m of [1, 3, 29]) {
          const b = randomBatch(spec, m, 11 + m);
          const ref = oneThreadSteps(spec, opt, b, m);
          for (let k = 1; k <= 4; k++) {
            const got = teamSteps(spec, opt, b, m, k);
            const diff = maxAbsDiff(got.w, ref.w);
            assert.ok(diff <= STEP_TOL, `m=${m} k=${k}: weights differ by ${diff}`);
            assert.ok(Math.abs(got.loss - ref.loss) <= 1e-5 * Math.max(1, Math.abs(ref.loss)), `m=${m} k=${k} loss`);
            // The same thread count gives the same bits.
            assert.deepEqual(teamSteps(spec, opt, b, m, k).w, got.w);
            // One thread is DenseNet's arithmetic exactly (same gemms, same update formulas) where no libm call
            // (tanh, exp in sigmoid) may round differently from V8's.
            if (k === 1 && spec === REGRESSION) assert.deepEqual(got.w, ref.w);
          }
        }
      });
    }
  }

  it('a batch given as row indices, which the threads gather, gives the bits of the gathered batch', () => {
    const adam: OptimizerConfig = { name: 'adam', lr: 0.01 };
    for (const spec of [ODD, REGRESSION, SOFTMAX_ONLY]) {
      const m = 29;
      const b = randomBatch(spec, m, 7);
      // The batch's rows scattered over a pool of 3m rows (one of them twice), the others noise.
      const rng = new Rng(9);
      const rows = Int32Array.from(rng.permutation(3 * m).subarray(0, m));
      rows[5] = rows[4];
      for (let c = 0; c < spec.inputSize; c++) b.x[5 * spec.inputSize + c] = b.x[4 * spec.inputSize + c];
      const pool = Float32Array.from({ length: 3 * m * spec.inputSize }, () => rng.next() * 2 - 1);
      rows.forEach((r, i) => pool.set(b.x.subarray(i * spec.inputSize, (i + 1) * spec.inputSize), r * spec.inputSize));
      for (let k = 1; k <= 4; k++) {
        const gathered = teamSteps(spec, adam, b, m, k);
        const fromRows = teamSteps(spec, adam, b, m, k, { x: pool, rows });
        assert.deepEqual(fromRows.w, gathered.w, `${spec.layers.length} layers, k=${k}`);
        assert.equal(fromRows.loss, gathered.loss);
      }
    }
  });

  it('refuses bad calls with a clear error before writing anything', () => {
    const team = new DenseTeam(ODD, 2);
    const b = randomBatch(ODD, 4, 1);
    const w = b.w.slice();
    const adam: OptimizerConfig = { name: 'adam', lr: 0.01 };
    const state = [new Float32Array(w.length), new Float32Array(w.length)];
    const refused: [() => unknown, RegExp][] = [
      [() => team.step(w.subarray(1), b.x, b.y, 4, adam, 1, state), /w has \d+ values, the model has \d+/],
      [() => team.step(w, b.x.subarray(1), b.y, 4, adam, 1, state), /x has \d+ elements, needs at least \d+/],
      [() => team.step(w, b.x, Int32Array.of(0, 1, 7, 2), 4, adam, 1, state), /labels\[2\] = 7 is out of range/],
      [() => team.step(w, b.x, new Float32Array(4), 4, adam, 1, state), /y must be an Int32Array/],
      [() => team.step(w, b.x, b.y, 0, adam, 1, state), /m must be in \[1, /],
      [() => team.step(w, b.x, b.y, 4, { name: 'adam', lr: -1 }, 1, state), /lr must be a positive number/],
      [() => team.step(w, b.x, b.y, 4, adam, 0, state), /step must be a positive integer/],
      [() => team.step(w, b.x, b.y, 4, adam, 1, [state[0]]), /adam needs 2 state arrays, got 1/],
      [() => team.step(w, b.x, b.y, 4, adam, 1, [state[0], state[1].subarray(1)]), /s1 has \d+ elements/],
      [() => team.step(w, b.x, b.y, 4, adam, 1, [state[0], state[0]]), /s0 and s1 must not overlap/],
      [() => team.step(w, w.subarray(0, 4 * 37), b.y, 4, adam, 1, state), /w must not overlap/],
      [() => team.step(w, b.x, b.y, 4, adam, 1, state, Int32Array.of(0, 1, 4, 2)), /rows\[2\] = 4 is out of range/],
      [() => team.step(w, b.x, b.y, 4, adam, 1, state, Int32Array.of(0, -1, 1, 2)), /rows\[1\] = -1 is out of/],
      [() => team.step(w, b.x, b.y, 4, adam, 1, state, Int32Array.of(0, 1)), /rows has 2 elements, needs at least 4/],
      [() => team.step(w, b.x.subarray(1), b.y, 4, adam, 1, state, Int32Array.of(0, 1, 2, 0)), /not whole rows of 37/],
      [
        () => team.step(w, w.subarray(37, 37 * 11), b.y, 4, adam, 1, state, Int32Array.of(9, 1, 2, 0)),
        /w must not overlap/,
      ],
      [() => team.step(w, b.x, b.y, 4, { name: 'nesterov' as 'sgd', lr: 1 }, 1, []), /optimizer must be 'sgd'/],
    ];
    for (const [call, message] of refused) {
      assert.throws(call, message);
      assert.deepEqual(w, b.w, `${String(message)} wrote to w`);
      assert.ok(state.every((s) => s.every((v) => v === 0)));
    }
    assert.throws(() => new DenseTeam(ODD, 0), /whole number from 1 to 256, got 0/);
    assert.throws(
      () => new DenseTeam({ ...ODD, layers: [{ name: 'x', units: 3, activation: 'relu' }] }, 2),
      /cross-entropy needs a softmax output/,
    );
    const addon = nativeDenseTeam()!;
    assert.throws(
      () => addon.denseTeamStep({}, w, b.x, b.y, 4, 'sgd', 1, 0, 0, 0, 1, null, null, null),
      /denseTeamStep: team must be a handle from denseTeam\(\), got object/,
    );
    assert.throws(
      () => addon.denseTeam(2, 37, Int32Array.of(3), 'r', 'xent'),
      /activation 'r' of layer 0 does not fit/,
    );
    assert.deepEqual(w, b.w);
    // Per-thread CPU counts (for the bench): one entry per thread, the waits part of the steps.
    team.profile(true);
    team.step(w, b.x, b.y, 4, adam, 1, state);
    const counts = team.profile(false);
    assert.equal(counts.length, 2);
    for (const c of counts)
      assert.ok(c.stepSeconds > 0 && c.waitSeconds >= 0 && c.waitSeconds <= c.stepSeconds, JSON.stringify(counts));
    team.close();
    team.close();
    assert.throws(() => team.step(w, b.x, b.y, 4, adam, 1, state), /the team was closed/);
  });
});

describe('TeamEngineTrainer: an epoch on k threads against EngineTrainer', { skip }, () => {
  const cases: [string, ModelSpec, number, OptimizerConfig][] = [
    ['seed MLP, Adam, B=32', mlp, 32, mlp.optimizer],
    ['2NN, SGD, B=32', twoNN, 32, twoNN.optimizer],
    ['seed MLP, momentum, B=32', mlp, 32, { name: 'momentum', lr: 0.01 }],
  ];
  for (const [label, spec, batch, opt] of cases) {
    it(`${label}: k = 1..4 within rounding, same accuracy, same bits run to run`, async () => {
      const c = cfg(spec, batch, opt);
      const one = new EngineTrainer(spec, kernels!);
      const ref = await one.train(start(spec), train, c);
      const refAcc = (await one.evaluate(ref.weights, test)).accuracy;
      for (let k = 1; k <= 4; k++) {
        const team = new TeamEngineTrainer(spec, kernels!, k);
        try {
          const a = await team.train(start(spec), train, c);
          const b = await team.train(start(spec), train, c);
          assert.deepEqual(a.weights, b.weights, `k=${k}: two runs differ`);
          assert.equal(a.steps, ref.steps);
          if (k === 1) assert.deepEqual(a.weights, ref.weights, 'one thread is EngineTrainer bit for bit');
          const diff = maxAbsDiff(a.weights, ref.weights);
          assert.ok(diff <= EPOCH_TOL, `k=${k}: weights differ by ${diff}`);
          const mean = meanAbsDiff(a.weights, ref.weights);
          assert.ok(mean <= EPOCH_MEAN_TOL, `k=${k}: weights differ by ${mean} on average`);
          assert.ok(Math.abs(a.metrics.loss - ref.metrics.loss) <= 1e-3, `k=${k}: loss`);
          const acc = (await team.evaluate(a.weights, test)).accuracy;
          assert.ok(Math.abs(acc - refAcc) <= ACCURACY_TOL, `k=${k}: accuracy ${acc} vs ${refAcc}`);
        } finally {
          team.dispose();
        }
      }
    });
  }

  it(`steps of fewer than ${TEAM_MIN_ROWS} rows train on one thread, bit for bit (the 2NN at B=10)`, async () => {
    const c = cfg(twoNN, 10);
    const team = new TeamEngineTrainer(twoNN, kernels!, 2);
    try {
      const ref = await new EngineTrainer(twoNN, kernels!).train(start(twoNN), train, c);
      assert.deepEqual((await team.train(start(twoNN), train, c)).weights, ref.weights);
    } finally {
      team.dispose();
    }
  });

  it('what the team does not take (FedProx, frozen ranges, a shift) trains on one thread, bit for bit', async () => {
    const team = new TeamEngineTrainer(mlp, kernels!, 2);
    const one = new EngineTrainer(mlp, kernels!);
    try {
      const prox = { ...cfg(mlp, 32), proxMu: 0.1 };
      assert.deepEqual(
        (await team.train(start(mlp), train, prox)).weights,
        (await one.train(start(mlp), train, prox)).weights,
      );
      const frozen = [{ offset: 0, size: 100 }];
      const c = cfg(mlp, 32);
      assert.deepEqual(
        (await team.train(start(mlp), train, c, undefined, frozen)).weights,
        (await one.train(start(mlp), train, c, undefined, frozen)).weights,
      );
      const shift = new Float32Array(start(mlp).length).fill(1e-3);
      assert.deepEqual(
        (await team.train(start(mlp), train, c, shift)).weights,
        (await one.train(start(mlp), train, c, shift)).weights,
      );
    } finally {
      team.dispose();
    }
  });

  it('refuses non-native kernels and models that are not dense-only, saying why', () => {
    assert.match(teamUnsupportedReason(mlp, jsKernels) ?? '', /needs the native kernels, not 'js'/);
    const cnn = builtinModel('cnn', [28, 28, 1], 10);
    assert.match(teamUnsupportedReason(cnn, kernels!) ?? '', /not dense-only/);
    assert.throws(() => new TeamEngineTrainer(cnn, kernels!, 2), /cannot train cnn on a team: .*not dense-only/);
  });

  it('a worker thread that leaves its team open ends cleanly, with the team threads joined', async () => {
    // Node 20 workers do not inherit the loader: the worker registers tsx itself (as src/sim/boot.mjs does).
    const code = [
      `(await import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))})).register();`,
      `const { DenseTeam } = await import(${source('../nn/dense-team.ts')});`,
      "const spec = { inputSize: 5, layers: [{ name: 'h', units: 6, activation: 'relu' }, { name: 'o', units: 3, " +
        "activation: 'softmax' }], loss: 'sparse_categorical_crossentropy' };",
      'const team = new DenseTeam(spec, 3);',
      'const w = new Float32Array(team.numParams).fill(0.1);',
      "const r = team.step(w, new Float32Array(10).fill(1), Int32Array.of(0, 2), 2, { name: 'sgd', lr: 0.1 }, 1, []);",
      "(await import('node:worker_threads')).parentPort.postMessage(r.correct >= 0 ? 'stepped' : 'no');",
    ].join('\n');
    const threadsNow = () => (existsSync('/proc/self/task') ? readdirSync('/proc/self/task').length : 0);
    const before = threadsNow();
    const worker = new Worker(new URL(`data:text/javascript,${encodeURIComponent(code)}`));
    const [message] = (await once(worker, 'message')) as [string];
    assert.equal(message, 'stepped');
    const [exitCode] = (await once(worker, 'exit')) as [number];
    assert.equal(exitCode, 0);
    // The team's two native threads were joined when the worker's environment ended (its cleanup hook or the
    // handle's finalizer), not left parked.
    assert.ok(threadsNow() <= before, `${threadsNow()} threads after the worker, ${before} before`);
  });

  it('a team never keeps a process alive: a child that trains on 2 threads and never closes exits by itself', () => {
    const child = [
      `const { loadMnist } = await import(${source('../data/mnist.ts')});`,
      `const { builtinModel, initialWeights, tensorSpecs } = await import(${source('./spec.ts')});`,
      `const { TeamEngineTrainer } = await import(${source('./team-trainer.ts')});`,
      `const { loadNativeKernels } = await import(${source('../nn/kernels-native.ts')});`,
      `const { Rng } = await import(${source('../core/rng.ts')});`,
      `const { firstRows } = await import(${source('../../test/support/first-rows.ts')});`,
      "const spec = builtinModel('mlp', [28, 28, 1], 10);",
      'const t = new TeamEngineTrainer(spec, loadNativeKernels(), 2);',
      'const w = initialWeights(tensorSpecs(spec), new Rng(1));',
      "const d = firstRows(loadMnist().train, 256, 'mnist:train[0:256]');",
      'await t.train(w, d, { epochs: 1, batchSize: 32, optimizer: spec.optimizer, proxMu: 0, seed: 1 });',
      "process.stdout.write('trained\\n');",
    ].join('\n');
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '--eval', child], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /trained/);
  });
});

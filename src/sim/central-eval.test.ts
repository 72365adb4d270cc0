import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadMnist } from '../data/mnist.js';
import { subset } from '../data/types.js';
import { builtinModel, initialWeights, tensorSpecs } from '../model/spec.js';
import { makeTrainer } from '../model/make-trainer.js';
import { EngineTrainer } from '../model/engine-trainer.js';
import { Rng } from '../core/rng.js';
import { evalRanges, splitCentralEvaluation, type RangeEvaluators } from './central-eval.js';
import { WorkerPoolTransport } from './pool.js';
import { shareDataset, sharePartitioned } from './shared-data.js';

test('evalRanges cover the rows in order, each starting at a multiple of the batch, at most the parts asked', () => {
  for (const [n, batch, parts] of [
    [10000, 512, 3],
    [10000, 512, 1],
    [100, 512, 4],
    [1024, 512, 2],
    [1025, 512, 8],
    [7, 2, 3],
  ]) {
    const r = evalRanges(n, batch, parts);
    assert.ok(r.length >= 1 && r.length <= parts, `${n}/${batch}/${parts}`);
    assert.equal(r[0][0], 0);
    assert.equal(r[r.length - 1][1], n);
    for (let i = 0; i < r.length; i++) {
      assert.ok(r[i][1] > r[i][0], 'not empty');
      assert.equal(r[i][0] % batch, 0, 'aligned');
      if (i > 0) assert.equal(r[i][0], r[i - 1][1], 'consecutive');
    }
  }
});

test('the main thread and the workers together evaluate to the bytes one thread gives (1 and 2 workers)', async () => {
  const data = loadMnist();
  const testSet = subset(
    data.test,
    Int32Array.from({ length: 1700 }, (_, i) => i * 3),
  );
  const spec = builtinModel('2nn', [28, 28, 1], 10);
  const evaluator = await makeTrainer(spec, 'engine');
  assert.ok(evaluator instanceof EngineTrainer);
  const w = initialWeights(tensorSpecs(spec), new Rng(9));
  const alone = await evaluator.evaluate(w, testSet);
  const train = subset(
    data.train,
    Int32Array.from({ length: 40 }, (_, i) => i),
  );
  const parts = [Int32Array.from({ length: 40 }, (_, i) => i)];
  for (const workers of [1, 2]) {
    const pool = await WorkerPoolTransport.start(
      {
        ...sharePartitioned(train, parts),
        validationFraction: 0,
        seed: 1,
        spec,
        trainer: 'engine',
        test: shareDataset(testSet),
      },
      workers,
    );
    try {
      assert.equal(pool.idle(), workers);
      const together = await splitCentralEvaluation(evaluator, testSet, pool)(w);
      assert.deepEqual(together, alone, `${workers} worker(s)`);
      assert.equal(pool.idle(), workers, 'the workers are free again');
    } finally {
      await pool.close();
    }
  }
});

test("a worker's failure is named, and unaligned ranges are refused", async () => {
  const spec = builtinModel('mlp', [28, 28, 1], 10);
  const evaluator = await makeTrainer(spec, 'engine');
  const data = loadMnist();
  const testSet = subset(
    data.test,
    Int32Array.from({ length: 1200 }, (_, i) => i),
  );
  const w = initialWeights(tensorSpecs(spec), new Rng(2));
  const broken: RangeEvaluators = {
    idle: () => 1,
    evaluateRanges: async (_w, ranges) => ranges.map(() => ({ error: 'this worker was started without the test set' })),
  };
  await assert.rejects(
    splitCentralEvaluation(evaluator, testSet, broken)(w),
    /simulation worker failed: this worker was started without the test set/,
  );
  assert.throws(() => (evaluator as EngineTrainer).evaluateRange(w, testSet, 3, 100), /multiple of 512/);
  assert.throws(() => (evaluator as EngineTrainer).evaluateRange(w, testSet, 0, 5000), /not within 0\.\.1200/);
});

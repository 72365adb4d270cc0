import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { InvalidArgumentError } from 'commander';
import { blasThreadsArg } from './threads-flag.js';
import { loadNativeKernels, nativeKernelsInfo, setNativeBlasThreads } from '../nn/kernels-native.js';
import { EngineTrainer } from '../model/engine-trainer.js';
import { builtinModel, initialWeights, tensorSpecs } from '../model/spec.js';
import { loadMnist } from '../data/mnist.js';
import { subset } from '../data/types.js';
import { Rng } from '../core/rng.js';

describe('--threads', () => {
  it('takes a whole number or all, and names what it expects otherwise', () => {
    assert.equal(blasThreadsArg('3'), 3);
    assert.equal(blasThreadsArg('all'), availableParallelism());
    for (const bad of ['0', '-1', '1.5', 'two', '', '2000']) {
      assert.throws(
        () => blasThreadsArg(bad),
        (e: unknown) => e instanceof InvalidArgumentError && /from 1 to 1024 or 'all'/.test(e.message),
        bad,
      );
    }
  });

  const native = loadNativeKernels();
  it('training with 2 BLAS threads is deterministic and close to 1 thread', {
    skip: native ? false : 'native addon not built',
  }, async () => {
    const spec = builtinModel('mlp', [28, 28, 1], 10);
    const data = loadMnist();
    const train = subset(
      data.train,
      Int32Array.from({ length: 320 }, (_, i) => i),
      'first 320',
    );
    const sha = (w: Float32Array) => createHash('sha256').update(w).digest('hex');
    const run = async (threads: number) => {
      setNativeBlasThreads(threads);
      assert.equal(nativeKernelsInfo()?.threads, threads);
      const trainer = new EngineTrainer(spec, native!);
      const r = await trainer.train(initialWeights(tensorSpecs(spec), new Rng(1)), train, {
        epochs: 1,
        batchSize: 32,
        optimizer: spec.optimizer,
        proxMu: 0,
        seed: 1,
      });
      trainer.dispose();
      return r.weights;
    };
    try {
      const [a, b, one] = [await run(2), await run(2), await run(1)];
      assert.equal(sha(a), sha(b), 'same thread count, same weights');
      let worst = 0;
      for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - one[i]));
      // Ten Adam steps from the same start: only the gemm summation order differs.
      assert.ok(worst < 1e-3, `2 threads vs 1 differ by ${worst}`);
    } finally {
      setNativeBlasThreads(1);
    }
  });
});

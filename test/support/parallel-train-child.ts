// A child process for parallel-trainer.test.ts. `return`: trains on 2 threads, never disposes, and returns (the
// process must still end). `sigterm`: keeps training and sends itself SIGTERM, which it handles as `edgefed node`
// does (dispose, exit 0); exit 3 means the signal never got through.
import { loadMnist } from '../../src/data/mnist.js';
import { getKernels } from '../../src/nn/kernels-select.js';
import { Rng } from '../../src/core/rng.js';
import { builtinModel, initialWeights, tensorSpecs } from '../../src/model/spec.js';
import { ParallelEngineTrainer } from '../../src/model/parallel-trainer.js';
import { firstRows } from './first-rows.js';

const mode = process.argv[2];
const spec = builtinModel('mlp', [28, 28, 1], 10);
const data = firstRows(loadMnist().train, 256, 'mnist:train[0:256]');
const trainer = await ParallelEngineTrainer.create(spec, getKernels(), 2);
const w = initialWeights(tensorSpecs(spec), new Rng(1));
const cfg = { epochs: 1, batchSize: 32, optimizer: spec.optimizer, proxMu: 0, seed: 1 };
await trainer.train(w, data, cfg);
process.stdout.write('trained\n');
if (mode === 'sigterm') {
  process.on('SIGTERM', () => {
    process.stdout.write('stopping\n');
    trainer.dispose();
    process.exit(0);
  });
  process.kill(process.pid, 'SIGTERM');
  for (let i = 0; i < 200; i++) {
    await trainer.train(w, data, cfg);
    await new Promise((resolve) => setImmediate(resolve));
  }
  process.exit(3);
}

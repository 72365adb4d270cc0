// Per-channel int8 quantisation (quantize.ts) against its definition and as properties; then on models
// trained on real MNIST (the seed MLP and McMahan's CNN): int8 weights are a quarter of the float bytes and
// test accuracy drops by at most 0.5 points.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { dequantize, dequantizeWeights, quantizePerChannel, quantizeWeights, quantizedBytes } from './quantize.js';
import { loadMnist } from '../data/mnist.js';
import { subset } from '../data/types.js';
import { tensorSpecs } from '../model/spec.js';
import { trainedMnistModel } from '../../test/support/mnist-trained.js';

describe('quantizePerChannel', () => {
  it('scales each output channel by its max |w| / 127 (a naive loop over a 2 x 3 kernel)', () => {
    const w = Float32Array.from([0.5, -2, 0, -1, 1, 0]);
    const { q, scales } = quantizePerChannel(w, 3);
    assert.deepEqual(Array.from(scales), [Math.fround(1 / 127), Math.fround(2 / 127), 1]);
    assert.deepEqual(Array.from(q), [64, -127, 0, -127, 64, 0]);
  });
  it('property: |w - q * scale| <= scale / 2, |q| <= 127, each channel reaches 127 unless all ~0 (scale would underflow)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }),
        fc.array(fc.float({ min: -10, max: 10, noNaN: true }), { minLength: 1, maxLength: 60 }),
        (channels, raw) => {
          const w = Float32Array.from(
            raw
              .slice(0, Math.max(channels, raw.length - (raw.length % channels)))
              .concat(new Array(raw.length < channels ? channels - raw.length : 0).fill(0)),
          );
          const { q, scales } = quantizePerChannel(w, channels);
          const back = dequantize({ name: 't', shape: [w.length / channels, channels], kind: 'int8', q, scales });
          for (let i = 0; i < w.length; i++) {
            if (Math.abs(q[i]) > 127) return false;
            if (Math.abs(w[i] - back[i]) > scales[i % channels] / 2 + 1e-6 * Math.abs(w[i])) return false;
          }
          for (let c = 0; c < channels; c++) {
            let m = 0;
            for (let i = c; i < q.length; i += channels) m = Math.max(m, Math.abs(q[i]));
            let largest = 0;
            for (let i = c; i < w.length; i += channels) largest = Math.max(largest, Math.abs(w[i]));
            if (Math.fround(largest / 127) > 0 && m !== 127) return false;
          }
          return true;
        },
      ),
      { seed: 3, numRuns: 200 },
    );
  });
  it('refuses non-finite weights and a channel count that does not divide the values', () => {
    assert.throws(() => quantizePerChannel(Float32Array.from([1, NaN]), 2), /non-finite weight \(NaN at 1\)/);
    assert.throws(() => quantizePerChannel(new Float32Array(5), 2), /cannot quantise 5 values in 2 channels/);
  });
});

describe('int8 weights of MNIST models', () => {
  const d = loadMnist();
  const test = subset(
    d.test,
    Array.from({ length: 2000 }, (_, i) => i),
  );
  for (const [name, n] of [
    ['mlp', 6000],
    ['cnn', 1500],
  ] as const) {
    it(`${name}: int8 payload a quarter of the float bytes, accuracy within 0.5 points of float`, async (t) => {
      const { spec, weights, trainer } = await trainedMnistModel(name, n);
      const q = quantizeWeights(tensorSpecs(spec), weights);
      const bytes = quantizedBytes(q);
      const floatBytes = weights.length * 4;
      const float = (await trainer.evaluate(weights, test)).accuracy;
      const int8 = (await trainer.evaluate(dequantizeWeights(q), test)).accuracy;
      t.diagnostic(
        `accuracy float ${float.toFixed(4)} int8 ${int8.toFixed(4)}; bytes: int8 ${bytes.int8} + scales ${bytes.scales} + float ` +
          `${bytes.float} = ${bytes.total} of ${floatBytes} (${(bytes.total / floatBytes).toFixed(4)})`,
      );
      assert.ok(float > 0.8, `the float model learned (${float})`);
      assert.ok(float - int8 <= 0.005, `int8 loses ${((float - int8) * 100).toFixed(2)} points`);
      const kernelFloats = q.filter((x) => x.kind === 'int8').reduce((a, x) => a + x.q!.length, 0);
      assert.equal(bytes.int8 * 4, kernelFloats * 4 * 1, 'one byte per quantised weight');
      assert.ok(bytes.int8 <= floatBytes / 4);
      assert.ok(bytes.total <= floatBytes * 0.26, `all quantised bytes ${bytes.total} vs float ${floatBytes}`);
    });
  }
});

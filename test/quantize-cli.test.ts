// `edgefed quantize` as a user runs it: a float model trained on real MNIST becomes an int8 folder, about a
// quarter of the float weights, that `edgefed predict` runs within half a point of the float accuracy; bad
// input (no model, a folder that is not a model, empty or misshapen calibration data) fails with exit code 2,
// a message naming the problem, and nothing written.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from './helpers.js';
import { saveTfjsModel } from '../src/model/tfjs.js';
import { trainedMnistModel } from './support/mnist-trained.js';
import type { Int8Manifest } from '../src/model/int8-files.js';

const dir = mkdtempSync(join(tmpdir(), 'edgefed-quantize-'));
const model = join(dir, 'model');
after(() => rmSync(dir, { recursive: true, force: true }));

before(async () => {
  const { spec, weights, trainer } = await trainedMnistModel('mlp', 6000);
  trainer.dispose();
  await saveTfjsModel(spec, weights, model);
});

describe('edgefed quantize', () => {
  test('writes an int8 folder that predicts within 0.5 points of the float model, stored in <= 1/4 of its bytes', async () => {
    const out = join(dir, 'int8');
    const r = await runCli(['quantize', '--model', model, '--calibration', 'mnist:train?limit=300', '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /wrote .*int8 \(int8, calibrated on 300 samples\): \d+ bytes stored \(2[0-5]\.\d\d% of/);
    assert.deepEqual(readdirSync(out).sort(), ['int8-model.json', 'int8-weights.bin']);
    const manifest = JSON.parse(readFileSync(join(out, 'int8-model.json'), 'utf8')) as Int8Manifest;
    const floatBytes = readFileSync(join(model, 'weights.bin')).length;
    const stored = readFileSync(join(out, 'int8-weights.bin')).length;
    assert.equal(manifest.bytes.floatWeightBytes, floatBytes);
    assert.equal(manifest.bytes.int8KernelBytes, (784 * 128 + 128 * 10) * 1);
    assert.equal(manifest.bytes.int32BiasBytes, 138 * 4);
    assert.ok(stored + manifest.bytes.activationParamBytes <= floatBytes / 4, `${stored} of ${floatBytes}`);
    const predict = async (m: string) => {
      const p = await runCli(['predict', '--model', m, '--input', 'mnist', '--limit', '1000', '--json']);
      assert.equal(p.code, 0, p.stderr);
      return JSON.parse(p.stdout) as { accuracy: number; trainer: string };
    };
    const [int8, float] = [await predict(out), await predict(model)];
    assert.equal(int8.trainer, 'int8');
    assert.ok(float.accuracy > 0.8, `the float model learned (${float.accuracy})`);
    assert.ok(float.accuracy - int8.accuracy <= 0.005, `int8 ${int8.accuracy} vs float ${float.accuracy}`);
  });

  const notAModel = join(dir, 'not-a-model');
  mkdirSync(notAModel, { recursive: true });
  writeFileSync(join(dir, 'empty.csv'), 'a,b,label\n');
  const bad: [string, string[], RegExp][] = [
    ['a missing model', ['--model', join(dir, 'nope'), '--calibration', 'mnist'], /--model .*nope: no such folder/],
    [
      'a folder that is not a model',
      ['--model', notAModel, '--calibration', 'mnist'],
      /not a model folder \(no model\.json\); give the model\/ folder of a run/,
    ],
    [
      'an empty calibration set',
      ['--model', model, '--calibration', `csv:${join(dir, 'empty.csv')}?label=label`],
      /--calibration csv:.*empty\.csv\?label=label: .*(empty|no data rows|no rows)/,
    ],
    [
      'calibration data of another shape',
      [
        '--model',
        model,
        '--calibration',
        'csv:examples/industrial-fault/synthetic-pump-sensors.csv?label=fault&keep=machine_id',
      ],
      /samples have shape \[6\] \(6 values\), the model takes \[28, 28, 1\] \(784\); calibrate on the data the model/,
    ],
    ['a calibration limit of 0', ['--model', model, '--calibration', 'mnist:train?limit=0'], /limit must be a whole/],
    ['an unknown calibration spec', ['--model', model, '--calibration', 'bogus'], /--calibration: 'bogus' is not/],
  ];
  for (const [what, args, message] of bad) {
    test(`refuses ${what}: exit 2, a clear message, nothing written`, async () => {
      const out = join(dir, `out-${what.replaceAll(' ', '-')}`);
      const r = await runCli(['quantize', ...args, '--out', out]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, message);
      assert.equal(existsSync(out), false);
      assert.ok(!readdirSync(dir).some((f) => f.startsWith('.out-')), 'no temporary folder left');
    });
  }
  test('refuses an --out that is not empty and an int8 model as input, leaving both as they were', async () => {
    const full = join(dir, 'full');
    mkdirSync(full);
    writeFileSync(join(full, 'keep.txt'), 'x');
    const r = await runCli(['quantize', '--model', model, '--calibration', 'mnist', '--out', full]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--out .*full: exists and is not an empty folder/);
    assert.deepEqual(readdirSync(full), ['keep.txt']);
    const again = await runCli(['quantize', '--model', join(dir, 'int8'), '--calibration', 'mnist']);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /is already an int8 model/);
  });
});

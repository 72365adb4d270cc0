import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatPredictReport } from './predict-table.js';

test('formatPredictReport: aligned table, actual labels by class name, summary with shares, more-rows hint', () => {
  const text = formatPredictReport(
    {
      n: 3,
      threshold: 0.9,
      accepted: 2,
      abstained: 1,
      accuracy: 2 / 3,
      acceptedAccuracy: 1,
      trainer: 'native',
      predictions: [
        { predicted: 'normal', confidence: 0.99, decision: 'accept' },
        { predicted: 'cavitation', confidence: 0.5, decision: 'abstain' },
        { predicted: 'normal', confidence: 0.95, decision: 'accept' },
      ],
      actual: [0, 1, 0],
      classNames: ['normal', 'bearing wear'],
    },
    2,
  );
  const lines = text.split('\n');
  assert.deepEqual(lines[0].split(/\s+/), ['row', 'predicted', 'confidence', 'decision', 'actual']);
  assert.match(lines[2], /^ *0 +normal +0\.9900 +accept +normal$/);
  assert.match(lines[3], /^ *1 +cavitation +0\.5000 +abstain +bearing wear$/);
  assert.equal(lines[4], '... 1 more rows (--rows N shows more, --json prints all)');
  assert.match(text, /3 examples: 2 accepted \(66\.7%\), 1 abstained \(33\.3%\) below confidence 0\.9/);
  assert.match(text, /accuracy 0\.6667 on all, 1\.0000 on the accepted ones/);
});

test('formatPredictReport: regression rows show the value and the error', () => {
  const text = formatPredictReport(
    { n: 1, mse: 0.25, predictions: [{ predicted: 1.5, value: 1.5, decision: 'accept' }], actual: [2] },
    20,
  );
  assert.match(text, /row +predicted value +decision +actual/);
  assert.match(text, /0 +1\.5000 +accept +2\.0000/);
  assert.match(text, /1 examples, mean squared error 0\.2500/);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { progressReporter } from './progress.js';

class Capture extends Writable {
  text = '';
  constructor(readonly isTTY: boolean) {
    super();
  }
  override _write(chunk: Buffer, _enc: string, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

test('on a terminal: a spinner names the phase, the bar never shows its raw template and has an ETA', async () => {
  const tty = new Capture(true);
  const p = progressReporter(3, false, tty);
  p.phase('loading MNIST');
  await new Promise((r) => setTimeout(r, 250));
  assert.match(tty.text, /[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] loading MNIST \(\d+s\)/);
  p.onRound({ round: 1, testAccuracy: 0.9, testLoss: 0.3, seconds: 1.5 });
  await new Promise((r) => setTimeout(r, 250));
  p.onRound({ round: 2, testAccuracy: 0.95, testLoss: 0.2, seconds: 1.4 });
  p.stop();
  assert.doesNotMatch(tty.text, /\{(acc|loss|secs|spin|busy)\}/, 'no raw template placeholder');
  assert.match(tty.text, /round 2\/3 .*test acc 0\.9500 loss 0\.2000 \| 1\.40s\/round \| ETA /);
  assert.doesNotMatch(tty.text, /\{note\}|not fused/);
});

test('off a terminal: one plain line per round (no phase lines); quiet prints nothing', () => {
  const log = new Capture(false);
  const p = progressReporter(2, false, log);
  p.phase('starting workers');
  p.onRound({ round: 1, testAccuracy: 0.5, testLoss: NaN, seconds: 0.25 });
  // A round too few nodes answered leaves the model as it was, and its line says so.
  p.onRound({
    round: 2,
    testAccuracy: 0.5,
    testLoss: 1,
    seconds: 60,
    fused: false,
    selected: [1, 2, 3],
    contributed: [],
  });
  p.stop();
  assert.equal(
    log.text,
    'round 1/2 test acc 0.5000 loss – | 0.25s\n' +
      'round 2/2 test acc 0.5000 loss 1.0000 | 60.00s | not fused: 0 of 3 nodes answered in time\n',
  );
  const silent = new Capture(true);
  const q = progressReporter(2, true, silent);
  q.phase('x');
  q.onRound({ round: 1, testAccuracy: 1, testLoss: 0, seconds: 1 });
  q.stop();
  assert.equal(silent.text, '');
});

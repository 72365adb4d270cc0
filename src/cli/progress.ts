/**
 * Progress on stderr for long commands. On a terminal: a spinner naming what is happening (data loading,
 * start-up) until the first round, then a bar with ETA whose spinner keeps turning during a long round. Off a
 * terminal (logs, CI): one plain line per round only, so a bad input still fails with one line. `quiet` prints
 * nothing.
 */
import cliProgress from 'cli-progress';
import type { Writable } from 'node:stream';

export interface RoundLine {
  round: number;
  testAccuracy: number;
  testLoss: number;
  seconds: number;
  /** False when the round committed no new model (too few nodes answered in time): said on its line. */
  fused?: boolean;
  selected?: readonly number[];
  contributed?: readonly number[];
}

/** ` | not fused: 0 of 10 nodes answered` for a round that left the model as it was, else nothing. */
function notFused(line: RoundLine): string {
  if (line.fused !== false) return '';
  const answered = line.contributed?.length ?? 0;
  return ` | not fused: ${answered} of ${line.selected?.length ?? answered} nodes answered in time`;
}

export interface ProgressReporter {
  /** What is happening now, before rounds start (or between, for a long step). */
  phase(text: string): void;
  onRound(line: RoundLine): void;
  stop(): void;
}

const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const fmt = (v: number) => (Number.isFinite(v) ? v.toFixed(4) : '–');

export function progressReporter(
  rounds: number,
  quiet: boolean,
  stream: Writable & { isTTY?: boolean } = process.stderr,
): ProgressReporter {
  if (quiet) return { phase: () => {}, onRound: () => {}, stop: () => {} };
  if (!stream.isTTY) {
    return {
      phase: () => {},
      onRound: (line) =>
        stream.write(
          `round ${line.round}/${rounds} test acc ${fmt(line.testAccuracy)} loss ${fmt(line.testLoss)} | ` +
            `${line.seconds.toFixed(2)}s${notFused(line)}\n`,
        ),
      stop: () => {},
    };
  }
  let frame = 0;
  let phaseText = '';
  let phaseStart = Date.now();
  let bar: cliProgress.SingleBar | null = null;
  const spinner = setInterval(() => {
    frame = (frame + 1) % SPINNER.length;
    const secs = ((Date.now() - phaseStart) / 1000).toFixed(0);
    if (bar) bar.update({ spin: SPINNER[frame], busy: `${secs}s` });
    else if (phaseText) stream.write(`\r${SPINNER[frame]} ${phaseText} (${secs}s)\x1b[K`);
  }, 100);
  spinner.unref();
  return {
    phase(text) {
      phaseText = text;
      phaseStart = Date.now();
      if (!bar) stream.write(`\r${SPINNER[frame]} ${text}\x1b[K`);
    },
    onRound(line) {
      if (!bar) {
        stream.write('\r\x1b[K');
        bar = new cliProgress.SingleBar(
          {
            format:
              'round {value}/{total} [{bar}] test acc {acc} loss {loss} | {secs}s/round{note} | ETA {eta_formatted} | ' +
              '{spin} round in progress {busy}',
            stream,
            hideCursor: false,
            etaBuffer: 5,
          },
          cliProgress.Presets.shades_classic,
        );
        bar.start(rounds, 0, { acc: '–', loss: '–', secs: '–', note: '', spin: SPINNER[frame], busy: '0s' });
      }
      phaseStart = Date.now();
      bar.update(line.round, {
        acc: fmt(line.testAccuracy),
        loss: fmt(line.testLoss),
        secs: line.seconds.toFixed(2),
        note: notFused(line),
        busy: '0s',
      });
    },
    stop() {
      clearInterval(spinner);
      if (bar) bar.stop();
      else if (phaseText) stream.write('\r\x1b[K');
    },
  };
}

/**
 * The traffic forecasting comparison in README.md: on the SYNTHETIC loop-detector data (generate-loops.ts),
 * forecast each detector's next 15-minute flow from its last 6 hours (24 slots), federated with one
 * group of detectors per node (natural:sensor), and compare on the held-out last week (per detector):
 *   - persistence: the next slot's flow is the last one seen;
 *   - linear: the built-in linear model (one weight per input of the window), trained federated;
 *   - gru: the built-in GRU (32 units), trained federated on the engine.
 * MAE and RMSE are in vehicles per hour. Regenerate the figures with
 *   node --import tsx examples/traffic-flow/forecast.ts [--rounds 30] [--nodes 4]
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpus } from 'node:os';
import { runSimulation } from '../../src/sim/simulate.js';
import { SeqNet } from '../../src/nn/seqnet.js';
import { selectKernels } from '../../src/nn/kernels-select.js';
import type { Dataset } from '../../src/data/types.js';

const here = dirname(fileURLToPath(import.meta.url));
export const FORECAST_SPEC = `csv:${join(here, 'synthetic-loop-detectors.csv')}?window=24&horizon=1&target=flow&key=sensor&keep=slot&test=0.25`;

export interface Errors {
  mae: number;
  rmse: number;
}

/** MAE and RMSE in the target's unit of predictions against scaled labels. */
export function errors(pred: ArrayLike<number>, test: Dataset, scale: { std: number }): Errors {
  let abs = 0,
    sq = 0;
  for (let i = 0; i < test.n; i++) {
    const e = (pred[i] - test.y[i]) * scale.std;
    abs += Math.abs(e);
    sq += e * e;
  }
  return { mae: abs / test.n, rmse: Math.sqrt(sq / test.n) };
}

/** The last flow in each window (column 0 of its last step), as a prediction. */
export function persistence(test: Dataset): Float32Array {
  const [steps, cols] = test.featureShape;
  return Float32Array.from({ length: test.n }, (_, i) => test.x[(i * steps + steps - 1) * cols]);
}

export async function compare(
  rounds: number,
  nodes: number,
  seed = 1,
): Promise<Record<string, Errors & { seconds?: number }>> {
  const out: Record<string, Errors & { seconds?: number }> = {};
  for (const model of ['linear', 'gru'] as const) {
    const r = await runSimulation({
      dataset: FORECAST_SPEC,
      model,
      nodes,
      partition: 'natural:sensor',
      rounds,
      seed,
      localEpochs: 1,
      batchSize: 32,
      workers: 1,
      trainer: 'engine',
    });
    const test = r.data.test;
    const net = new SeqNet(r.spec, await selectKernels());
    out[model] = { ...errors(net.predict(r.weights, test.x, test.n), test, r.data.targetScale!), seconds: r.seconds };
    if (model === 'linear') out.persistence = errors(persistence(test), test, r.data.targetScale!);
  }
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const arg = (name: string, dflt: number) => {
    const i = process.argv.indexOf(name);
    return i < 0 ? dflt : Number(process.argv[i + 1]);
  };
  const rounds = arg('--rounds', 30);
  const nodes = arg('--nodes', 4);
  const res = await compare(rounds, nodes);
  console.log(`| model | test MAE (veh/h) | test RMSE (veh/h) | simulation time |`);
  console.log(`| --- | --- | --- | --- |`);
  for (const name of ['persistence', 'linear', 'gru']) {
    const e = res[name];
    console.log(
      `| ${name} | ${e.mae.toFixed(1)} | ${e.rmse.toFixed(1)} | ${e.seconds === undefined ? '-' : `${e.seconds.toFixed(0)} s`} |`,
    );
  }
  console.log(
    `\n${rounds} rounds, ${nodes} nodes (natural:sensor), 1 local epoch, batch 32, seed 1; ${cpus()[0]?.model ?? 'unknown CPU'}, ` +
      `${cpus().length} cores, kernels ${(await selectKernels()).name}`,
  );
}

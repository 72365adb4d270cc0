/**
 * Strategies: how a round picks nodes and fuses their updates. The hooks follow Flower's names
 * (configureTrain, aggregateTrain, configureEvaluate, aggregateEvaluate) and the algorithms Flower's names.
 * The fusion math itself lives in core (aggregate.ts, server-opt.ts); a strategy only routes to it.
 */
import { averageDelta, fedNova, weightedAverage } from '../core/aggregate.js';
import { makeServerOptimizer, type ServerOptHyper, type ServerOptimizer, type ServerOptName, type ServerOptState } from '../core/server-opt.js';
import { sampleNodes } from '../core/sampling.js';
import type { Rng } from '../core/rng.js';
import type { Metrics } from '../model/trainer.js';

export const STRATEGY_NAMES = ['fedavg', 'fedprox', 'fedavgm', 'fedadam', 'fedyogi', 'fedadagrad', 'fednova', 'fedsgd'] as const;
export type StrategyName = (typeof STRATEGY_NAMES)[number];

export interface StrategyConfig {
  name: StrategyName;
  /** FedProx mu (only fedprox). */
  proxMu: number;
  /** Server optimizer and its hyper-parameters. */
  serverOpt: ServerOptName;
  hyper: ServerOptHyper;
}

export interface TrainResult {
  nodeId: number;
  numExamples: number;
  steps: number;
  /** Local weights after training ('weights' mode) or the mean gradient ('gradient' mode). */
  vector: Float32Array;
  metrics: Metrics;
}

export interface EvalResult extends Metrics {
  nodeId: number;
  numExamples: number;
}

const SERVER_OPT_OF: Record<StrategyName, ServerOptName> = {
  fedavg: 'fedavg', fedprox: 'fedavg', fedavgm: 'fedavgm', fedadam: 'fedadam', fedyogi: 'fedyogi',
  fedadagrad: 'fedadagrad', fednova: 'fedavg', fedsgd: 'sgd',
};

/**
 * Parses `name[:args]`, args a comma list of key=value; a bare number is fedprox's mu
 * (`fedprox:0.01`), and fedsgd takes a bare `adam` for an Adam server step (`fedsgd:adam,lr=0.001`).
 */
export function parseStrategy(text: string): StrategyConfig {
  const [rawName, rest] = splitOnce(text.trim(), ':');
  const name = rawName.toLowerCase() as StrategyName;
  if (!STRATEGY_NAMES.includes(name)) throw new Error(`unknown strategy '${rawName}' (one of ${STRATEGY_NAMES.join(', ')})`);
  const cfg: StrategyConfig = { name, proxMu: 0, serverOpt: SERVER_OPT_OF[name], hyper: {} };
  const args = rest === undefined ? [] : rest.split(',').map((s) => s.trim());
  if (rest !== undefined && args.some((a) => a === '')) throw new Error(`strategy '${text}': empty parameter`);
  let bare = 0;
  for (const arg of args) {
    const [key, value] = splitOnce(arg, '=');
    if (value === undefined) {
      if (name === 'fedprox' && bare === 0) cfg.proxMu = toNumber(text, 'mu', key, 0);
      else if (name === 'fedsgd' && key === 'adam') cfg.serverOpt = 'adam';
      else if (name === 'fedsgd' && key === 'sgd') cfg.serverOpt = 'sgd';
      else throw new Error(`strategy '${text}': parameter '${key}' needs the form key=value`);
      bare++;
      continue;
    }
    if (name === 'fedprox' && key === 'mu') cfg.proxMu = toNumber(text, 'mu', value, 0);
    else cfg.hyper[key as keyof ServerOptHyper] = toNumber(text, key, value, -Infinity);
  }
  if (name === 'fedprox' && !(cfg.proxMu > 0)) throw new Error(`strategy '${text}': fedprox needs mu > 0, e.g. fedprox:0.01`);
  // Let the server optimizer reject hyper-parameters it does not know, now rather than after round 1.
  makeServerOptimizer(cfg.serverOpt, cfg.hyper);
  return cfg;
}

function splitOnce(s: string, sep: string): [string, string | undefined] {
  const i = s.indexOf(sep);
  return i < 0 ? [s, undefined] : [s.slice(0, i), s.slice(i + 1)];
}

function toNumber(spec: string, key: string, value: string, min: number): number {
  const n = Number(value);
  if (value === '' || !Number.isFinite(n) || n < min) throw new Error(`strategy '${spec}': ${key} must be a number${min > -Infinity ? ` >= ${min}` : ''}, got '${value}'`);
  return n;
}

export class Strategy {
  readonly mode: 'weights' | 'gradient';
  private opt: ServerOptimizer;

  constructor(readonly config: StrategyConfig, restore?: ServerOptState) {
    this.mode = config.name === 'fedsgd' ? 'gradient' : 'weights';
    this.opt = makeServerOptimizer(config.serverOpt, config.hyper, restore);
  }

  get name(): StrategyName {
    return this.config.name;
  }

  configureTrain(nodeIds: readonly number[], fraction: number, minNodes: number, rng: Rng): number[] {
    return sampleNodes(nodeIds, fraction, minNodes, rng);
  }

  /** Fuses results (any order in, node-id order used) into the next global model. */
  aggregateTrain(global: Float32Array, results: readonly TrainResult[]): Float32Array {
    if (results.length === 0) throw new Error('aggregateTrain needs at least one result');
    const sorted = [...results].sort((a, b) => a.nodeId - b.nodeId);
    const vectors = sorted.map((r) => r.vector);
    const weights = sorted.map((r) => r.numExamples);
    if (this.mode === 'gradient') return this.opt.step(global, weightedAverage(vectors, weights));
    if (this.config.name === 'fednova') return fedNova(global, vectors, weights, sorted.map((r) => r.steps));
    return this.opt.step(global, averageDelta(global, vectors, weights));
  }

  configureEvaluate(nodeIds: readonly number[], fraction: number, minNodes: number, rng: Rng): number[] {
    return sampleNodes(nodeIds, fraction, minNodes, rng);
  }

  /** Example-weighted mean of the nodes' metrics. */
  aggregateEvaluate(results: readonly EvalResult[]): Metrics & { numExamples: number } {
    let n = 0;
    let loss = 0;
    let accuracy = 0;
    for (const r of results) {
      n += r.numExamples;
      loss += r.loss * r.numExamples;
      accuracy += r.accuracy * r.numExamples;
    }
    return n === 0 ? { loss: NaN, accuracy: NaN, numExamples: 0 } : { loss: loss / n, accuracy: accuracy / n, numExamples: n };
  }

  state(): ServerOptState {
    return this.opt.state();
  }
}

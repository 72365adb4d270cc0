/**
 * Strategies: how a round picks nodes and fuses their updates. The hooks follow Flower's names
 * (configureTrain, aggregateTrain, configureEvaluate, aggregateEvaluate) and the algorithms Flower's names.
 * The fusion math itself lives in core (aggregate.ts, robust.ts, server-opt.ts); a strategy only routes to it.
 *
 * Byzantine-robust strategies (issue "Trust"): fedmedian, fedtrimmedavg[:beta=0.2], krum:f=K,
 * multikrum:f=K[,m=M], bulyan:f=K. They fuse the nodes' deltas (local - global), unweighted, with the
 * core rule of the same name and apply the result to the global model with the 'fedavg' server step
 * (eta 1 unless eta=... is given). `clip=NORM` clips every delta to that L2 norm before fusion; it works
 * with the robust strategies and with every FedAvg-family one (fedavg, fedprox, fedavgm, fedadam,
 * fedyogi, fedadagrad), not with fednova or fedsgd.
 */
import { averageDelta, deltas, fedNova, weightedAverage } from '../core/aggregate.js';
import { bulyan, clipUpdates, coordinateMedian, krum, multiKrum, trimmedMean } from '../core/robust.js';
import { makeServerOptimizer, type ServerOptHyper, type ServerOptimizer, type ServerOptName, type ServerOptState } from '../core/server-opt.js';
import { poissonSample, sampleNodes } from '../core/sampling.js';
import type { Rng } from '../core/rng.js';
import type { RandomWords } from '../core/discrete-gaussian.js';
import { ADAPTIVE_DEFAULTS, AdaptiveDpAggregator, adaptiveStateFrom, type AdaptiveClipConfig } from './dp-adaptive.js';
import { dpGridMean } from '../core/dp-grid.js';
import { dpWords, type DpNoiseSource } from './dp-noise.js';
import { ledgerStateFrom, PrivacyLedger, type PrivacySpentSoFar } from './privacy-ledger.js';
import type { Metrics } from '../model/trainer.js';

export const ROBUST_STRATEGY_NAMES = ['fedmedian', 'fedtrimmedavg', 'krum', 'multikrum', 'bulyan'] as const;
export const STRATEGY_NAMES = ['fedavg', 'fedprox', 'fedavgm', 'fedadam', 'fedyogi', 'fedadagrad', 'fednova', 'fedsgd', 'dpfedavg', ...ROBUST_STRATEGY_NAMES] as const;
export type StrategyName = (typeof STRATEGY_NAMES)[number];
export type RobustStrategyName = (typeof ROBUST_STRATEGY_NAMES)[number];

/** FedTrimmedAvg's default fraction trimmed from each side (Flower's default). */
export const DEFAULT_TRIM_BETA = 0.2;

export function isRobust(name: StrategyName): name is RobustStrategyName {
  return (ROBUST_STRATEGY_NAMES as readonly string[]).includes(name);
}

export interface StrategyConfig {
  name: StrategyName;
  /** FedProx mu (only fedprox). */
  proxMu: number;
  /** Server optimizer and its hyper-parameters. */
  serverOpt: ServerOptName;
  hyper: ServerOptHyper;
  /** L2 bound each delta is clipped to before fusion (`clip=NORM`); absent = no clipping. */
  clip?: number;
  /** Byzantine updates to tolerate (krum, multikrum, bulyan: required). */
  f?: number;
  /** Multi-Krum: how many of the best-scored updates to average; absent = n - f. */
  m?: number;
  /** FedTrimmedAvg: fraction trimmed from each side, in [0, 0.5) (default 0.2). */
  beta?: number;
  /** DP-FedAvg: Gaussian noise multiplier z (noise std z * clip on the sum of clipped updates) and delta. */
  noise?: number;
  delta?: number;
  /** DP-FedAvg with `clip=adaptive`: the clip norm follows a quantile of the update norms (dp-adaptive.ts). */
  adaptive?: AdaptiveClipConfig;
}

/** What a round tells the strategy beyond the results: for DP noise and its fixed denominator. */
export interface RoundContext {
  round: number;
  seed: number;
  /** Nodes asked this round and nodes that could have been asked. */
  sampled: number;
  population: number;
  /** DP-FedAvg: the fixed denominator q N (Poisson sampling); absent = max(sampled, results). */
  expectedClients?: number;
  /** DP-FedAvg: where its noise comes from; absent = 'csprng' (noise nobody can regenerate). */
  noise?: DpNoiseSource;
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
  fedadagrad: 'fedadagrad', fednova: 'fedavg', fedsgd: 'sgd', dpfedavg: 'fedavg',
  fedmedian: 'fedavg', fedtrimmedavg: 'fedavg', krum: 'fedavg', multikrum: 'fedavg', bulyan: 'fedavg',
};

/**
 * Parses `name[:args]`, args a comma list of key=value; a bare number is fedprox's mu
 * (`fedprox:0.01`), and fedsgd takes a bare `adam` for an Adam server step (`fedsgd:adam,lr=0.001`).
 * Robust ones: `fedmedian`, `fedtrimmedavg:beta=0.2`, `krum:f=2`, `multikrum:f=2,m=5`, `bulyan:f=1`;
 * `clip=NORM` with those and the FedAvg family (`fedavg:clip=5`).
 */
export function parseStrategy(text: string): StrategyConfig {
  const [rawName, rest] = splitOnce(text.trim(), ':');
  const name = rawName.toLowerCase() as StrategyName;
  if (!STRATEGY_NAMES.includes(name)) throw new Error(`unknown strategy '${rawName}' (one of ${STRATEGY_NAMES.join(', ')})`);
  const cfg: StrategyConfig = { name, proxMu: 0, serverOpt: SERVER_OPT_OF[name], hyper: {} };
  const args = rest === undefined ? [] : rest.split(',').map((s) => s.trim());
  if (rest !== undefined && args.some((a) => a === '')) throw new Error(`strategy '${text}': empty parameter`);
  let bare = 0;
  const adaptiveArgs: Partial<AdaptiveClipConfig> = {};
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
    else if (key === 'clip' && name === 'dpfedavg' && value === 'adaptive') cfg.adaptive = { ...ADAPTIVE_DEFAULTS, ...cfg.adaptive };
    else if (ADAPTIVE_KEYS[key] && name === 'dpfedavg') {
      const [field, min, max] = ADAPTIVE_KEYS[key];
      const v = toNumber(text, key, value, min);
      if (!(v <= max) || ((field === 'initialClip' || field === 'lr') && !(v > 0))) throw new Error(`strategy '${text}': ${key} must be in ${field === 'quantile' ? '[0, 1]' : '(0, ' + max + ']'}, got '${value}'`);
      adaptiveArgs[field] = v;
    } else if (key === 'clip') {
      if (name === 'fednova' || name === 'fedsgd') throw new Error(`strategy '${text}': clip works with fedavg, fedprox, fedavgm, fedadam, fedyogi, fedadagrad and ${ROBUST_STRATEGY_NAMES.join(', ')}, not ${name}`);
      cfg.clip = toNumber(text, 'clip', value, 0);
      if (!(cfg.clip > 0)) throw new Error(`strategy '${text}': clip must be a number > 0, got '${value}'`);
    } else if (key === 'noise' && name === 'dpfedavg') cfg.noise = toNumber(text, 'noise', value, 0);
    else if (key === 'delta' && name === 'dpfedavg') {
      cfg.delta = toNumber(text, 'delta', value, 0);
      if (!(cfg.delta > 0 && cfg.delta < 1)) throw new Error(`strategy '${text}': delta must be in (0, 1), got '${value}'`);
    } else if (key === 'f' && (name === 'krum' || name === 'multikrum' || name === 'bulyan')) cfg.f = toWhole(text, 'f', value, 0);
    else if (key === 'm' && name === 'multikrum') cfg.m = toWhole(text, 'm', value, 1);
    else if (key === 'beta' && name === 'fedtrimmedavg') {
      cfg.beta = toNumber(text, 'beta', value, 0);
      if (!(cfg.beta < 0.5)) throw new Error(`strategy '${text}': beta (fraction trimmed from each side) must be in [0, 0.5), got '${value}'`);
    } else if (key === 'f' || key === 'm') {
      throw new Error(`strategy '${text}': parameter '${key}' applies to ${key === 'f' ? 'krum, multikrum and bulyan' : 'multikrum'} only`);
    } else cfg.hyper[key as keyof ServerOptHyper] = toNumber(text, key, value, -Infinity);
  }
  if (name === 'fedprox' && !(cfg.proxMu > 0)) throw new Error(`strategy '${text}': fedprox needs mu > 0, e.g. fedprox:0.01`);
  if (name === 'fedtrimmedavg') cfg.beta ??= DEFAULT_TRIM_BETA;
  if ((name === 'krum' || name === 'multikrum' || name === 'bulyan') && cfg.f === undefined) {
    throw new Error(`strategy '${text}': ${name} needs f, the number of Byzantine nodes to tolerate, e.g. ${name}:f=2`);
  }
  if (Object.keys(adaptiveArgs).length > 0) {
    if (!cfg.adaptive) throw new Error(`strategy '${text}': ${Object.keys(adaptiveArgs).join(', ')} apply with clip=adaptive only`);
    Object.assign(cfg.adaptive, adaptiveArgs);
  }
  if (name === 'dpfedavg') {
    if ((cfg.clip === undefined && !cfg.adaptive) || cfg.noise === undefined) throw new Error(`strategy '${text}': dpfedavg needs clip and noise (clip a norm or 'adaptive'), e.g. dpfedavg:clip=1,noise=1.0`);
    const sigmaB = cfg.adaptive?.countNoise;
    if (sigmaB !== undefined && cfg.noise > 0 && !(2 * sigmaB > cfg.noise)) throw new Error(`strategy '${text}': countnoise must exceed noise / 2 (${cfg.noise / 2}), or the count alone would spend the whole privacy budget`);
    cfg.delta ??= 1e-5;
  }
  // Let the server optimizer reject hyper-parameters it does not know, now rather than after round 1.
  makeServerOptimizer(cfg.serverOpt, cfg.hyper);
  return cfg;
}

/** dpfedavg:clip=adaptive parameters: key -> [field, min, max]. */
const ADAPTIVE_KEYS: Record<string, [keyof AdaptiveClipConfig, number, number]> = {
  clip0: ['initialClip', 0, 1e6], quantile: ['quantile', 0, 1], cliplr: ['lr', 0, 10], countnoise: ['countNoise', 0, 1e6],
};

function splitOnce(s: string, sep: string): [string, string | undefined] {
  const i = s.indexOf(sep);
  return i < 0 ? [s, undefined] : [s.slice(0, i), s.slice(i + 1)];
}

function toWhole(spec: string, key: string, value: string, min: number): number {
  const n = Number(value);
  if (value === '' || !Number.isInteger(n) || n < min) throw new Error(`strategy '${spec}': ${key} must be a whole number >= ${min}, got '${value}'`);
  return n;
}

/**
 * The fewest updates a round must fuse for this strategy: 2f + 3 for krum and multikrum (and m),
 * 4f + 3 for bulyan, 1 otherwise. A round with fewer results would make aggregateTrain throw.
 */
export function minUpdates(config: StrategyConfig): number {
  const f = config.f ?? 0;
  if (config.name === 'krum') return 2 * f + 3;
  if (config.name === 'multikrum') return Math.max(2 * f + 3, config.m ?? 1);
  if (config.name === 'bulyan') return 4 * f + 3;
  return 1;
}

function toNumber(spec: string, key: string, value: string, min: number): number {
  const n = Number(value);
  if (value === '' || !Number.isFinite(n) || n < min) throw new Error(`strategy '${spec}': ${key} must be a number${min > -Infinity ? ` >= ${min}` : ''}, got '${value}'`);
  return n;
}

export class Strategy {
  readonly mode: 'weights' | 'gradient';
  private opt: ServerOptimizer;
  private readonly adaptive: AdaptiveDpAggregator | null;
  private readonly ledger: PrivacyLedger | null;

  /** `extra` is the checkpoint's extra state (extraState()): adaptive clipping resumes from it. */
  constructor(readonly config: StrategyConfig, restore?: ServerOptState, extra?: Record<string, unknown>) {
    this.mode = config.name === 'fedsgd' ? 'gradient' : 'weights';
    this.opt = makeServerOptimizer(config.serverOpt, config.hyper, restore);
    this.adaptive = config.adaptive ? new AdaptiveDpAggregator(config.adaptive, config.noise!, adaptiveStateFrom(extra)) : null;
    this.ledger = config.name === 'dpfedavg' ? new PrivacyLedger(config.noise!, config.delta!, ledgerStateFrom(extra)) : null;
  }

  /** State beyond the server optimizer's, for the checkpoint's extra (JSON-safe). */
  extraState(): Record<string, unknown> {
    const a = this.adaptive?.state();
    return { ...(a ? { adaptiveClip: a } : {}), ...(this.ledger ? { privacyLedger: this.ledger.state() } : {}) };
  }

  /** The clip norm DP-FedAvg uses next round (adaptive or fixed); undefined for other strategies. */
  get dpClipNorm(): number | undefined {
    return this.adaptive ? this.adaptive.clipNorm : this.config.name === 'dpfedavg' ? this.config.clip : undefined;
  }

  get name(): StrategyName {
    return this.config.name;
  }

  /**
   * The nodes asked to train. DP-FedAvg samples each node independently with probability `fraction` (Poisson,
   * the sampling its accountant assumes), from `dpSampling` words when given (the CSPRNG in deployment).
   */
  configureTrain(nodeIds: readonly number[], fraction: number, minNodes: number, rng: Rng, dpSampling?: RandomWords): number[] {
    if (this.config.name === 'dpfedavg') return poissonSample(nodeIds, fraction, dpSampling ?? rng);
    return sampleNodes(nodeIds, fraction, minNodes, rng);
  }

  /** Fuses results (any order in, node-id order used) into the next global model. */
  aggregateTrain(global: Float32Array, results: readonly TrainResult[], context?: RoundContext): Float32Array {
    if (results.length === 0) throw new Error('aggregateTrain needs at least one result');
    const sorted = [...results].sort((a, b) => a.nodeId - b.nodeId);
    const vectors = sorted.map((r) => r.vector);
    const weights = sorted.map((r) => r.numExamples);
    if (this.config.name === 'dpfedavg') {
      // DP-FedAvg (McMahan et al. 2018): clip each update, sum, add noise, divide by the expected count.
      if (!context) throw new Error('dpfedavg needs the round context for its noise and denominator');
      const m = context.expectedClients ?? Math.max(context.sampled, vectors.length);
      const words = (use: string) => dpWords(context.noise ?? 'csprng', context.seed, `${use}:${context.round}`);
      const ds = deltas(global, vectors);
      if (this.adaptive) return this.opt.step(global, this.adaptive.aggregate(ds, m, words('dp-noise'), words('dp-count')));
      return this.opt.step(global, dpGridMean(ds, this.config.clip!, this.config.noise!, words('dp-noise'), m));
    }
    if (this.mode === 'gradient') return this.opt.step(global, weightedAverage(vectors, weights));
    if (this.config.name === 'fednova') return fedNova(global, vectors, weights, sorted.map((r) => r.steps));
    const { name, clip } = this.config;
    if (!isRobust(name) && clip === undefined) return this.opt.step(global, averageDelta(global, vectors, weights));
    const ds = clip === undefined ? deltas(global, vectors) : clipUpdates(deltas(global, vectors), clip);
    return this.opt.step(global, this.fuseDeltas(ds, weights));
  }

  /** The server step on an already fused mean delta (secure aggregation computes it without single updates). */
  applyMeanDelta(global: Float32Array, meanDelta: Float32Array): Float32Array {
    return this.opt.step(global, meanDelta);
  }

  /** The fused delta of the robust rules (unweighted), or the example-weighted mean for the FedAvg family. */
  private fuseDeltas(ds: Float32Array[], weights: number[]): Float32Array {
    const { name, f = 0, m, beta = DEFAULT_TRIM_BETA } = this.config;
    const need = minUpdates(this.config);
    if (ds.length < need) throw new Error(`${name}${f ? ` with f = ${f}` : ''} needs at least ${need} updates in a round, got ${ds.length}`);
    switch (name) {
      case 'fedmedian': return coordinateMedian(ds);
      case 'fedtrimmedavg': return trimmedMean(ds, beta);
      case 'krum': return krum(ds, f);
      case 'multikrum': return multiKrum(ds, f, m);
      case 'bulyan': return bulyan(ds, f);
      default: return weightedAverage(ds, weights);
    }
  }

  /** DP-FedAvg: charges one round at sampling rate q (0 = nothing released) to the privacy ledger. */
  recordPrivacyRound(q: number): void {
    this.ledger?.recordRound(q);
  }

  /** Privacy spent so far (RDP accountant over the actual rounds, Opacus' conversion); null without DP. */
  privacySpent(): PrivacySpentSoFar | null {
    return this.ledger?.spent() ?? null;
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

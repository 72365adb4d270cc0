/**
 * Differential privacy as a wrapper around any strategy that can apply a mean delta (McMahan et al. 2018):
 * nodes are picked by Poisson sampling at rate q, each update is clipped to C, the sum gets exact discrete
 * Gaussian noise of scale z C on a fixed-point grid (from the CSPRNG, or the run seed in repeatable
 * simulations: dp-noise.ts), is divided by the fixed q N, and that mean goes to the wrapped strategy's server
 * step. `clip=adaptive` lets C follow a quantile of the update norms (dp-adaptive.ts). Privacy spent is kept
 * round by round in a ledger (privacy-ledger.ts) that rides in the checkpoint.
 */
import { deltas } from '../../core/aggregate.js';
import { dpGridMean } from '../../core/dp-grid.js';
import { ADAPTIVE_DEFAULTS, AdaptiveDpAggregator, adaptiveStateFrom, type AdaptiveClipConfig } from '../dp-adaptive.js';
import { dpWords } from '../dp-noise.js';
import { ledgerStateFrom, PrivacyLedger } from '../privacy-ledger.js';
import type { StrategyArgs } from './args.js';
import { defineStrategy, type CommonParams, type StrategyDefinition } from './define.js';

export interface DpParams extends CommonParams {
  noise: number;
  delta: number;
  adaptive?: AdaptiveClipConfig;
}

/** `clip=adaptive` parameters: key -> [field, min, max]. */
const ADAPTIVE_KEYS: Record<string, [keyof AdaptiveClipConfig, number, number]> = {
  clip0: ['initialClip', 0, 1e6],
  quantile: ['quantile', 0, 1],
  cliplr: ['lr', 0, 10],
  countnoise: ['countNoise', 0, 1e6],
};

const DEFAULT_DELTA = 1e-5;

function readDp(args: StrategyArgs, common: CommonParams): DpParams {
  const clipText = args.take('clip');
  const noiseText = args.take('noise');
  const deltaText = args.take('delta');
  const tuned: Partial<AdaptiveClipConfig> = {};
  for (const [key, [field, min, max]] of Object.entries(ADAPTIVE_KEYS)) {
    const value = args.take(key);
    if (value === undefined) continue;
    const v = args.number(key, value, min);
    if (!(v <= max) || ((field === 'initialClip' || field === 'lr') && !(v > 0))) {
      args.fail(`${key} must be in ${field === 'quantile' ? '[0, 1]' : `(0, ${max}]`}, got '${value}'`);
    }
    tuned[field] = v;
  }
  const p: Partial<DpParams> & CommonParams = { ...common };
  if (clipText === 'adaptive') p.adaptive = { ...ADAPTIVE_DEFAULTS };
  else if (clipText !== undefined) {
    p.clip = args.number('clip', clipText, 0);
    if (!(p.clip > 0)) args.fail(`clip must be a number > 0, got '${clipText}'`);
  }
  if (noiseText !== undefined) p.noise = args.number('noise', noiseText, 0);
  if (deltaText !== undefined) {
    p.delta = args.number('delta', deltaText, 0);
    if (!(p.delta > 0 && p.delta < 1)) args.fail(`delta must be in (0, 1), got '${deltaText}'`);
  }
  if (Object.keys(tuned).length > 0) {
    if (!p.adaptive) args.fail(`${Object.keys(tuned).join(', ')} apply with clip=adaptive only`);
    Object.assign(p.adaptive, tuned);
  }
  if ((p.clip === undefined && !p.adaptive) || p.noise === undefined) {
    args.fail(`${args.name} needs clip and noise (clip a norm or 'adaptive'), e.g. ${args.name}:clip=1,noise=1.0`);
  }
  const sigmaB = p.adaptive?.countNoise;
  if (sigmaB !== undefined && p.noise > 0 && !(2 * sigmaB > p.noise)) {
    args.fail(
      `countnoise must exceed noise / 2 (${p.noise / 2}), or the count alone would spend the whole privacy budget`,
    );
  }
  p.delta ??= DEFAULT_DELTA;
  return p as DpParams;
}

/** `inner` with differential privacy, named `name` (dpfedavg = differentialPrivacy(fedavg, 'dpfedavg')). */
export function differentialPrivacy(inner: StrategyDefinition, name: string): StrategyDefinition<DpParams> {
  const keys = ['clip', 'noise', 'delta', ...Object.keys(ADAPTIVE_KEYS)];
  return defineStrategy<DpParams>({
    name,
    syntax: `${name}:clip=C|adaptive,noise=Z[,delta=D]`,
    example: `${name}:clip=1,noise=1`,
    serverOpt: inner.serverOpt,
    keys,
    summary: `${inner.name} with differential privacy: Poisson sampling, clipped updates, discrete Gaussian noise, RDP accounting`,
    parse(args, common) {
      const dp = readDp(args, common);
      const { noise, delta, adaptive, clip } = dp;
      const base = inner.parse ? inner.parse(args, common) : common;
      return { ...base, ...(clip !== undefined ? { clip } : {}), noise, delta, ...(adaptive ? { adaptive } : {}) };
    },
    capabilities(params) {
      const capabilities = inner.capabilities(withoutClip(params));
      return {
        ...capabilities,
        needsIndividualUpdates: true,
        secureAggregation: false,
        async: false,
        sizedWork: false,
        poissonSampling: true,
      };
    },
    create(params, restore) {
      const step = inner.create(withoutClip(params), restore);
      const applyMeanDelta = step.applyMeanDelta?.bind(step);
      if (!applyMeanDelta)
        throw new Error(`${name}: ${inner.name} cannot apply a mean delta, so it cannot be wrapped with DP`);
      const adaptive = params.adaptive
        ? new AdaptiveDpAggregator(params.adaptive, params.noise, adaptiveStateFrom(restore?.extra))
        : null;
      const ledger = new PrivacyLedger(params.noise, params.delta, ledgerStateFrom(restore?.extra));
      return {
        aggregate(global, results, context) {
          // Clip each update, sum, add noise, divide by the expected count.
          if (!context) throw new Error(`${name} needs the round context for its noise and denominator`);
          const ds = deltas(
            global,
            results.map((r) => r.vector),
          );
          const m = context.expectedClients ?? Math.max(context.sampled, ds.length);
          const words = (use: string) => dpWords(context.noise ?? 'csprng', context.seed, `${use}:${context.round}`);
          if (adaptive) return applyMeanDelta(global, adaptive.aggregate(ds, m, words('dp-noise'), words('dp-count')));
          return applyMeanDelta(global, dpGridMean(ds, params.clip!, params.noise, words('dp-noise'), m));
        },
        // No applyMeanDelta of its own: a mean fused elsewhere would skip the clipping and the noise.
        ...(step.state ? { state: () => step.state!() } : {}),
        extraState() {
          const a = adaptive?.state();
          return { ...(a ? { adaptiveClip: a } : {}), privacyLedger: ledger.state() };
        },
        recordPrivacyRound(q) {
          ledger.recordRound(q);
        },
        privacySpent() {
          return ledger.spent();
        },
        get dpClipNorm() {
          return adaptive ? adaptive.clipNorm : params.clip;
        },
      };
    },
  });
}

/** The wrapped strategy's own parameters: its clip is the DP clip, applied here. */
function withoutClip(params: DpParams): CommonParams {
  const { clip: _clip, noise: _noise, delta: _delta, adaptive: _adaptive, ...rest } = params;
  return rest;
}

/**
 * What the Byzantine-robust rules share: they fuse the nodes' deltas (local - global), unweighted, with a
 * core rule, optionally after clipping each (`clip=NORM`), and apply the result with the server step
 * ('fedavg', eta 1 unless eta=... is given).
 */
import { deltas } from '../../core/aggregate.js';
import { clipUpdates } from '../../core/robust.js';
import { makeServerOptimizer } from '../../core/server-opt.js';
import type { StrategyArgs } from './args.js';
import { defineStrategy, PER_UPDATE, type CommonParams, type StrategyDefinition } from './define.js';

export interface RobustRule<P extends CommonParams> {
  name: string;
  syntax: string;
  summary: string;
  example?: string;
  keys?: readonly string[];
  parse?(args: StrategyArgs, common: CommonParams): P;
  minUpdates?(params: P): number;
  fuse(ds: Float32Array[], params: P): Float32Array;
}

export function robustStrategy<P extends CommonParams>(rule: RobustRule<P>): StrategyDefinition<P> {
  const need = (p: P) => rule.minUpdates?.(p) ?? 1;
  return defineStrategy<P>({
    name: rule.name,
    syntax: rule.syntax,
    summary: rule.summary,
    example: rule.example,
    keys: rule.keys,
    clip: true,
    ...(rule.parse ? { parse: rule.parse } : {}),
    capabilities: (p) => ({ ...PER_UPDATE, minUpdates: need(p) }),
    create(params, restore) {
      const opt = makeServerOptimizer(params.serverOpt, params.hyper, restore?.state);
      return {
        aggregate(global, results) {
          const all = deltas(
            global,
            results.map((r) => r.vector),
          );
          const ds = params.clip === undefined ? all : clipUpdates(all, params.clip);
          const f = (params as CommonParams & { f?: number }).f;
          if (ds.length < need(params)) {
            throw new Error(
              `${rule.name}${f ? ` with f = ${f}` : ''} needs at least ${need(params)} updates in a round, got ${ds.length}`,
            );
          }
          return opt.step(global, rule.fuse(ds, params));
        },
        state: () => opt.state(),
      };
    },
  });
}

/** Reads `f` (Byzantine nodes to tolerate), which krum, multikrum and bulyan require. */
export function readF(args: StrategyArgs): number {
  const f = args.take('f');
  if (f === undefined) {
    args.fail(`${args.name} needs f, the number of Byzantine nodes to tolerate, e.g. ${args.name}:f=2`);
  }
  return args.whole('f', f, 0);
}

/**
 * Which run features combine, in one place for both views of the run spec (engine/run-spec.ts): the simulation
 * options and the deployed run config. What a strategy works with is read from its declared capabilities
 * (strategies/define.ts), and what a codec keeps from its parsed spec, never from a list of names. Each issue
 * names the field to change; messages name fields the way the user wrote them (`--mode async` on the command
 * line, `mode "async"` in a run config). A bad combination is refused when the spec is parsed, before a run starts.
 */
import { parseCompression } from '../core/compress-update.js';
import { ATTACK_KINDS } from '../core/robust.js';
import { flagName } from './run-spec.js';
import { capabilitiesOf, parseStrategy, strategiesWith } from './strategies/registry.js';
import type { StrategyConfig } from './strategies/define.js';
import { BATCHNORM_MODELS, BUILTIN_MODELS } from '../model/spec.js';

export interface RunChoice {
  strategy: string;
  compression: string;
  secagg: boolean;
  mode: 'sync' | 'async';
  overSelect?: number;
  deadline?: number;
  evalFraction?: number;
  bufferSize?: number;
  concurrency?: number;
  serverLr?: number;
  /** The model: a built-in name or a model.json path (a path is checked when the model is loaded). */
  model?: string;
}

export interface RunIssue {
  path: string[];
  message: string;
}

/** How messages name a mode and a field: the command line's flags or a run config's keys. */
export interface Wording {
  mode(mode: 'sync' | 'async'): string;
  field(name: string): string;
}

export const FLAG_WORDING: Wording = { mode: (m) => `--mode ${m}`, field: (f) => flagName([f]) };
export const CONFIG_WORDING: Wording = { mode: (m) => `mode "${m}"`, field: (f) => f };

export interface FedBuffSettings {
  concurrency: number;
  bufferSize: number;
  serverLr: number;
}

/**
 * FedBuff's settings, the same rule in simulation and deployment: concurrency defaults to the number of nodes a
 * synchronous round would ask (`roundSize`), K to min(10, concurrency), the server learning rate to 1.
 */
export function fedBuffSettings(
  c: Pick<RunChoice, 'bufferSize' | 'concurrency' | 'serverLr'>,
  roundSize: number,
): FedBuffSettings {
  const concurrency = c.concurrency ?? roundSize;
  return { concurrency, bufferSize: c.bufferSize ?? Math.min(10, concurrency), serverLr: c.serverLr ?? 1 };
}

/** Throws a config error unless the strategy can run on the securely aggregated mean alone. */
export function checkSecAggStrategy(config: StrategyConfig): void {
  if (capabilitiesOf(config).secureAggregation) {
    // A node's own state (control variates, personal layers) would ride beside a masked update unmasked.
    if (config.localState === undefined) return;
    throw new Error(
      `secure aggregation: strategy '${config.name}' keeps state on each node ('${config.localState}'), which the masked sum cannot carry; leave --secagg out`,
    );
  }
  const able = strategiesWith('secureAggregation');
  if (config.clip !== undefined && able.includes(config.name)) {
    throw new Error(
      `secure aggregation: the strategy's clip=${config.clip} clips individual updates, which the coordinator never sees; leave it out`,
    );
  }
  throw new Error(
    `secure aggregation: strategy '${config.name}' needs the individual updates, which secure aggregation hides; use one of ${able.join(', ')}`,
  );
}

/**
 * Problems with the combination; empty when the features agree. `roundSize` is the nodes a synchronous round asks
 * (FedBuff's default concurrency) and `population` the nodes there are, when known (simulation).
 */
export function runIssues(choice: RunChoice, say: Wording, roundSize: number, population?: number): RunIssue[] {
  const issues: RunIssue[] = [];
  const add = (field: string, message: string) => issues.push({ path: [field], message });
  const strategy = tryParse(() => parseStrategy(choice.strategy)); // a bad text is the strategy field's own error
  const can = strategy && capabilitiesOf(strategy);
  const compressing = tryParse(() => parseCompression(choice.compression).kind !== 'none') ?? false;
  const builtin = (BUILTIN_MODELS as readonly string[]).includes(choice.model ?? '');
  if (strategy && can?.needsBatchNorm && builtin && !(BATCHNORM_MODELS as readonly string[]).includes(choice.model!)) {
    add(
      'strategy',
      `${strategy.name} keeps each node's BatchNormalization layers local, and model '${choice.model}' has none: ` +
        `use ${say.field('model')} ${BATCHNORM_MODELS.join(' or ')} or a model.json with BatchNormalization layers`,
    );
  }
  if (compressing && choice.secagg)
    add('compression', 'secure aggregation sends fixed-point masked updates: compression does not apply');
  if (compressing && choice.mode === 'async') {
    add('compression', `compressed updates work with synchronous rounds, not FedBuff (${say.mode('async')}) yet`);
  }
  if (compressing && can && !can.compression)
    add('compression', `strategy '${strategy.name}' does not take compressed updates`);
  if (strategy && can?.poissonSampling && (choice.overSelect ?? 0) > 0) {
    // Keeping the first k answers of an over-selected sample makes who is fused depend on the other nodes:
    // not the Poisson sampling the accountant bounds, so refused rather than accounted with a guess.
    add(
      'overSelect',
      `${strategy.name} samples nodes by Poisson sampling and fuses every answer; over-selection does not apply: leave it out`,
    );
  }
  if (choice.secagg) {
    // The secure round is one synchronous protocol over every selected node's replies.
    if (choice.mode === 'async') add('secagg', `works with synchronous rounds only, not ${say.mode('async')}`);
    if ((choice.overSelect ?? 0) > 0)
      add('secagg', 'does not combine with over-selection: every selected node is part of the masked sum');
    if (strategy) {
      try {
        checkSecAggStrategy(strategy);
      } catch (e) {
        add('strategy', (e as Error).message);
      }
    }
  }
  if (choice.mode !== 'async') {
    for (const key of ['bufferSize', 'concurrency', 'serverLr'] as const) {
      if (choice[key] !== undefined) add(key, `applies to ${say.mode('async')} only`);
    }
    return issues;
  }
  const { concurrency, bufferSize } = fedBuffSettings(choice, roundSize);
  if (concurrency < bufferSize)
    add('concurrency', `must be >= the buffer size K = ${bufferSize} (nodes training at once), got ${concurrency}`);
  if (population !== undefined && concurrency > population) {
    add('concurrency', `${concurrency} nodes training at once, but there are only ${population} nodes`);
  }
  if (strategy && !can!.async) {
    add(
      'strategy',
      `${say.mode('async')} fuses with FedBuff; use ${say.field('strategy')} ${strategiesWith('async').join(' or ')} (got '${choice.strategy}')`,
    );
  }
  if (choice.deadline !== undefined)
    add('deadline', `applies to ${say.mode('sync')} only (async runs have no rounds to close)`);
  if (choice.overSelect) add('overSelect', `applies to ${say.mode('sync')} only`);
  if (choice.evalFraction)
    add('evalFraction', `applies to ${say.mode('sync')} only (FedBuff evaluates centrally after each fusion)`);
  return issues;
}

/** The simulation-only fields the simulation's rules read (the view's output, engine/run-spec.ts). */
export interface SimulationChoice extends RunChoice {
  nodes: number;
  queue?: string;
  localDp?: string;
  attack?: 'none' | (typeof ATTACK_KINDS)[number];
  malicious?: number;
  attackScale?: number;
  secaggDropout?: number;
  secaggClip?: number;
  secaggMaxWeight?: number;
  profile?: string;
}

/**
 * Problems only a simulation can have (worker processes, attacks, the virtual clock), worded as flags. With
 * --queue any worker process may take a node's next request, so nothing a node keeps between rounds survives.
 */
export function simulationIssues(choice: SimulationChoice): RunIssue[] {
  const issues: RunIssue[] = [];
  const add = (field: string, message: string) => issues.push({ path: [field], message });
  const strategy = tryParse(() => parseStrategy(choice.strategy));
  if (choice.queue !== undefined && tryParse(() => parseCompression(choice.compression).ef)) {
    add(
      'compression',
      "error feedback keeps each node's residual in the process that serves it, and with --queue any worker may take a node: add ,ef=off",
    );
  }
  if (choice.localDp !== undefined && strategy && capabilitiesOf(strategy).updateMode === 'gradient')
    add('localDp', 'local DP noises model updates; fedsgd sends gradients: use a FedAvg-family strategy');
  if (choice.queue !== undefined && strategy?.localState) {
    add(
      'queue',
      `strategy '${choice.strategy}' keeps state on each node ('${strategy.localState}') in the process that serves it, and with --queue any worker may take a node: use worker threads`,
    );
  }
  const attacking = choice.attack !== undefined && choice.attack !== 'none';
  if (attacking && choice.malicious === undefined) {
    add('malicious', `needed with --attack ${choice.attack}: the fraction of nodes that attack, e.g. --malicious 0.2`);
  } else if (!attacking && choice.malicious !== undefined) {
    add('attack', `needed with --malicious: one of ${ATTACK_KINDS.join(', ')}`);
  } else if (attacking && choice.malicious !== undefined && maliciousCount(choice.malicious, choice.nodes) < 1) {
    add('malicious', `${choice.malicious} of ${choice.nodes} nodes is less than one node`);
  }
  for (const key of ['secaggDropout', 'secaggClip', 'secaggMaxWeight'] as const) {
    if (choice[key] !== undefined && !choice.secagg) add(key, 'applies with --secagg only');
  }
  // Queue workers take any job, so a node's secure session would not survive between its requests.
  if (choice.secagg && choice.queue !== undefined) add('secagg', 'runs on worker threads only, not with --queue');
  // The secure round closes on real replies, not by simulated finish time.
  if (choice.secagg && choice.profile !== undefined)
    add('secagg', 'works with synchronous rounds only, not with --profile (virtual clock)');
  if (choice.attackScale !== undefined && (!attacking || choice.attack === 'label-flip'))
    add('attackScale', 'applies to --attack sign-flip, gaussian and scale only');
  return issues;
}

/** How many of `nodes` nodes a --malicious fraction makes Byzantine: floor(fraction * nodes) (at most that fraction). */
export function maliciousCount(fraction: number, nodes: number): number {
  return Math.floor(fraction * nodes + 1e-9);
}

/** What an engine is built with, as far as the combination rules go (engine-for.ts EngineSpec). */
export interface EngineChoice {
  strategy: { name: string; config: StrategyConfig; capabilities: ReturnType<typeof capabilitiesOf> };
  overSelect?: number;
  secure?: unknown;
  fedBuff?: FedBuffSettings;
}

/**
 * The same rules, asserted when an engine is built: a parsed run spec never fails them (runIssues refused the
 * combination first, naming the field), so a failure here means a caller built an engine without parsing one.
 */
export function assertEngineCombination(choice: EngineChoice): void {
  const can = choice.strategy.capabilities;
  if (can.poissonSampling && (choice.overSelect ?? 0) > 0) {
    throw new Error(
      `${choice.strategy.name} does not combine with over-selection: dropping the late nodes of a Poisson sample is not the sampling its accountant bounds; leave overSelect out`,
    );
  }
  // A secure round fuses with applyMeanDelta, which adds no noise: epsilon would be reported for nothing.
  if (can.poissonSampling && choice.secure !== undefined)
    throw new Error(
      `${choice.strategy.name} does not combine with secure aggregation: its noise goes on updates the coordinator clips itself`,
    );
  if (choice.fedBuff === undefined) return;
  if (!can.async) {
    const got = `${choice.strategy.name}${choice.strategy.config.clip !== undefined ? ':clip' : ''}`;
    throw new Error(
      `asynchronous mode fuses with FedBuff; the strategy must be plain ${strategiesWith('async').join(' or ')}, got '${got}'`,
    );
  }
}

function tryParse<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch {
    return undefined;
  }
}

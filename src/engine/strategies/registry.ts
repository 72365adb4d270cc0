/**
 * The strategy registry: names to definitions. Parsing a strategy text, the CLI help, the lists of strategies
 * a feature works with and the combination checks all read it, so adding a strategy is one module and one
 * line in BUILTIN below (or `registerStrategy` for one defined outside).
 */
import { makeServerOptimizer, SERVER_OPT_DEFAULTS, type ServerOptHyper } from '../../core/server-opt.js';
import { StrategyArgs } from './args.js';
import type { CommonParams, StrategyCapabilities, StrategyConfig, StrategyDefinition } from './define.js';
import { fedadagrad, fedadam, fedavg, fedavgm, fedprox, fedyogi } from './fedavg.js';
import { fednova } from './fednova.js';
import { fedsgd } from './fedsgd.js';
import { differentialPrivacy } from './dp.js';
import { fedmedian } from './median.js';
import { fedtrimmedavg } from './trimmed-mean.js';
import { krum, multikrum } from './krum.js';
import { bulyan } from './bulyan.js';
import { scaffold } from './scaffold.js';
import { feddyn } from './feddyn.js';
import { ditto, fedper, fedrep } from './fedper.js';
import { fedbn } from './fedbn.js';

const BUILTIN: readonly StrategyDefinition[] = [
  fedavg,
  fedprox,
  fedavgm,
  fedadam,
  fedyogi,
  fedadagrad,
  fednova,
  fedsgd,
  differentialPrivacy(fedavg, 'dpfedavg'),
  fedmedian,
  fedtrimmedavg,
  krum,
  multikrum,
  bulyan,
  scaffold,
  feddyn,
  fedper,
  fedrep,
  ditto,
  fedbn,
];

const definitions = new Map<string, StrategyDefinition>(BUILTIN.map((d) => [d.name, d]));

/** The built-in strategy names, in registry order. */
export const BUILTIN_STRATEGY_NAMES: readonly string[] = BUILTIN.map((d) => d.name);

/** Adds a strategy (from defineStrategy) under its name; registering the same definition again is a no-op. */
export function registerStrategy<P extends CommonParams>(definition: StrategyDefinition<P>): void {
  const known = definitions.get(definition.name);
  if (known && known !== (definition as unknown))
    throw new Error(`a strategy named '${definition.name}' is already registered`);
  definitions.set(definition.name, definition as unknown as StrategyDefinition);
}

export function strategyNames(): string[] {
  return [...definitions.keys()];
}

export function strategyDefinition(name: string): StrategyDefinition {
  const d = definitions.get(name);
  if (!d) throw new Error(`unknown strategy '${name}' (one of ${strategyNames().join(', ')})`);
  return d;
}

/** The capabilities of a parsed strategy. */
export function capabilitiesOf(config: StrategyConfig): StrategyCapabilities {
  return strategyDefinition(config.name).capabilities(config);
}

/** The fewest updates a round must fuse for this strategy (2f + 3 for krum, 4f + 3 for bulyan, 1 for most). */
export function minUpdates(config: StrategyConfig): number {
  return capabilitiesOf(config).minUpdates;
}

/** Names of the strategies whose example form (`example`, else the bare name) has the capability. */
export function strategiesWith(capability: 'secureAggregation' | 'async' | 'sizedWork'): string[] {
  const out: string[] = [];
  for (const d of definitions.values()) {
    try {
      if (d.capabilities(parseStrategy(d.example ?? d.name))[capability]) out.push(d.name);
    } catch {
      // a definition whose example does not parse lacks the capability as far as lists go
    }
  }
  return out;
}

/** The `--strategy` help: every registered strategy's text form. */
export function strategyHelp(): string {
  const clip = [...definitions.values()].filter((d) => d.clip).map((d) => d.name);
  return (
    `${[...definitions.values()].map((d) => d.syntax).join(' | ')} (key=value parameters after a colon; ` +
    `server optimiser hyper-parameters such as eta=X too); clip=NORM clips each update with ${listOf(clip)}`
  );
}

/**
 * Parses `name[:args]`, args a comma list of key=value (and the bare words a strategy takes, such as
 * `fedprox:0.01` or `fedsgd:adam`). What the strategy's module does not read goes to the server optimizer.
 */
export function parseStrategy(text: string): StrategyConfig {
  const args: StrategyArgs = StrategyArgs.parse(text);
  const definition = strategyDefinition(args.name);
  const common: CommonParams = { proxMu: 0, serverOpt: definition.serverOpt ?? 'fedavg', hyper: {} };
  const own = definition.params ? readTyped(args, definition, common) : (definition.parse?.(args, common) ?? common);
  const config = { ...own, name: definition.name } as StrategyConfig;
  const clipText = args.take('clip');
  if (clipText !== undefined) {
    const accepting = [...definitions.values()].filter((d) => d.clip).map((d) => d.name);
    if (!definition.clip) args.fail(`clip works with ${listOf(accepting)}, not ${definition.name}`);
    config.clip = args.number('clip', clipText, 0);
    if (!(config.clip > 0)) args.fail(`clip must be a number > 0, got '${clipText}'`);
  }
  const hyper: ServerOptHyper = { ...config.hyper };
  for (const { key, value } of args.remaining()) {
    if (value === undefined) args.fail(`parameter '${key}' needs the form key=value`);
    const owners = [...definitions.values()].filter((d) => d.keys?.includes(key)).map((d) => d.name);
    if (owners.length > 0 && !isHyperKey(key)) args.fail(`parameter '${key}' applies to ${listOf(owners)} only`);
    hyper[key as keyof ServerOptHyper] = args.number(key, value);
  }
  config.hyper = hyper;
  // Let the server optimizer reject hyper-parameters it does not know, now rather than after round 1.
  makeServerOptimizer(config.serverOpt, config.hyper);
  return config;
}

function isHyperKey(key: string): boolean {
  return Object.values(SERVER_OPT_DEFAULTS).some((defaults) => key in defaults);
}

/** `key=value` parameters checked by the definition's zod object (numbers and booleans converted first). */
function readTyped(args: StrategyArgs, definition: StrategyDefinition, common: CommonParams): CommonParams {
  const raw: Record<string, unknown> = {};
  for (const key of Object.keys(definition.params!.shape)) {
    const value = args.take(key);
    if (value === undefined) continue;
    raw[key] =
      value === 'true'
        ? true
        : value === 'false'
          ? false
          : value !== '' && Number.isFinite(Number(value))
            ? Number(value)
            : value;
  }
  const parsed = definition.params!.safeParse(raw);
  if (!parsed.success)
    args.fail(parsed.error.issues.map((i) => `${i.path.join('.') || 'parameters'}: ${i.message}`).join('; '));
  return { ...common, ...(parsed.data as object) };
}

function listOf(names: readonly string[]): string {
  return names.length < 2 ? names.join('') : `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`;
}

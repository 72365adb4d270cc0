/**
 * Everything a simulated run derives from its options before any round: data, partition, model, initial
 * weights and the simulated attack. Both the coordinator side (simulate.ts) and node hosts that run
 * elsewhere (queue-worker.ts, on other machines) call this, so every side derives the same shards.
 */
import { loadDatasetSpec, type LoadedData } from '../data/load.js';
import { featureSize, subset, type Dataset } from '../data/types.js';
import { parsePartitionSpec, partition, partitionReport, type PartitionReport } from '../core/partition.js';
import { Rng } from '../core/rng.js';
import { makeLayout, type TensorSlot } from '../core/params.js';
import {
  builtinModel,
  BUILTIN_MODELS,
  initialWeights,
  tensorSpecs,
  type BuiltinModel,
  type ModelSpec,
} from '../model/spec.js';
import { DEFAULT_LR } from '../nn/optimizer.js';
import { minUpdates, parseStrategy, type StrategyConfig } from '../engine/strategy.js';
import { sampleCount } from '../core/sampling.js';
import { DEFAULT_ATTACK_SCALE, type AttackKind } from '../core/robust.js';
import type { NodeAttack } from '../node/host.js';
import { maliciousCount, type ResolvedOptions } from './options.js';
import { partitionInput } from './partition-input.js';
import { scaleForRun } from './standardize-shards.js';

export interface AttackSummary {
  kind: AttackKind;
  /** The strength used (sign-flip / scale factor, gaussian sigma); null for label-flip. */
  scale: number | null;
  /** The --malicious fraction asked for. */
  fraction: number;
  /** Byzantine node ids, ascending: floor(fraction * nodes) drawn with Rng(seed).fork('malicious'). */
  nodes: number[];
}

export interface RunSetup {
  strategyConfig: StrategyConfig;
  minNodes: number;
  data: LoadedData;
  train: Dataset;
  test: Dataset;
  spec: ModelSpec;
  layout: TensorSlot[];
  parts: Int32Array[];
  report: PartitionReport;
  initial: Float32Array;
  attack?: AttackSummary;
  nodeAttack?: NodeAttack;
}

/** The Byzantine nodes of a run, fixed by the run seed alone (an independent 'malicious' stream). */
export function pickMalicious(seed: number, nodes: number, fraction: number): number[] {
  return new Rng(seed)
    .fork('malicious')
    .sample(nodes, maliciousCount(fraction, nodes))
    .sort((a, b) => a - b);
}

/**
 * Checks before any work that every round will have enough updates for the strategy (Krum needs
 * n >= 2f + 3, Bulyan n >= 4f + 3) and returns the engine's minNodes: a round that loses nodes below
 * that many is then skipped rather than failing the run. The sample size itself is not changed.
 */
function checkRoundSize(options: ResolvedOptions, strategy: ReturnType<typeof parseStrategy>): number {
  const need = minUpdates(strategy);
  const perRound = sampleCount(options.nodes, options.fraction, options.minNodes ?? 1);
  if (perRound < need) {
    throw new Error(
      `--strategy ${options.strategy}: needs at least ${need} updates per round, but a round samples ${perRound} of ${options.nodes} nodes` +
        ' (raise --nodes, --fraction or --min-nodes, or lower f)',
    );
  }
  return Math.max(options.minNodes ?? 1, need);
}

/** The model spec a --model value names: a built-in or a path to a tfjs model.json. */
export async function resolveModel(
  name: string,
  train: Dataset,
): Promise<{ spec: ModelSpec; weights: Float32Array | null }> {
  if ((BUILTIN_MODELS as readonly string[]).includes(name))
    return { spec: builtinModel(name as BuiltinModel, train.featureShape, train.numClasses), weights: null };
  if (!name.endsWith('.json'))
    throw new Error(`--model: '${name}' is not one of ${BUILTIN_MODELS.join(', ')} nor a path to a tfjs model.json`);
  const { ensureTfjs, specFromModelJson } = await import('../model/tfjs.js'); // tfjs only for a user's model.json
  await ensureTfjs();
  const r = await specFromModelJson(name);
  if (r.spec.inputShape.reduce((a, b) => a * b, 1) !== featureSize(train)) {
    throw new Error(
      `--model: ${name} takes inputs of shape [${r.spec.inputShape.join(',')}], the data has [${train.featureShape.join(',')}]`,
    );
  }
  return r;
}

/** The first `limit` examples of a split (--limit-train, --limit-test), or the whole split without a smaller limit. */
function firstExamples(split: Dataset, limit: number | undefined): Dataset {
  return limit && limit < split.n
    ? subset(
        split,
        Array.from({ length: limit }, (_, i) => i),
      )
    : split;
}

/** Derives a run's data, shards, model and attack from its (validated) options; throws on bad input. */
export async function prepareRun(options: ResolvedOptions): Promise<RunSetup> {
  const strategyConfig = parseStrategy(options.strategy);
  const minNodes = checkRoundSize(options, strategyConfig);
  const partitionSpec = parsePartitionSpec(options.partition);
  const loaded = loadDatasetSpec(options.dataset, { standardize: options.standardize === undefined });
  let train = firstExamples(loaded.train, options.limitTrain);
  let test = firstExamples(loaded.test, options.limitTest);
  let data = loaded;
  const model = await resolveModel(options.model, train);
  const spec: ModelSpec = {
    ...model.spec,
    optimizer: {
      name: options.optimizer ?? model.spec.optimizer.name,
      lr:
        options.lr ??
        (options.optimizer && options.optimizer !== model.spec.optimizer.name
          ? DEFAULT_LR[options.optimizer]
          : model.spec.optimizer.lr),
    },
  };
  const layout = makeLayout(tensorSpecs(spec));
  const rng = new Rng(options.seed);
  const parts = partition(partitionSpec, partitionInput(train, partitionSpec), options.nodes, rng.fork('partition'));
  if (options.standardize) {
    const scaled = await scaleForRun(options.standardize, loaded, train, test, parts, options.secagg === true);
    ({ train, test } = scaled);
    const description = loaded.description.replace(
      'raw values (not standardized)',
      `features standardized with ${options.standardize} statistics (--standardize)`,
    );
    data = {
      ...loaded,
      train,
      test,
      description,
      standardization: scaled.stats,
      standardizedWith: options.standardize,
    };
  }
  const report = partitionReport(parts, train.y, train.numClasses);
  const initial = model.weights ?? initialWeights(tensorSpecs(spec), rng.fork('init'));
  const attackKind = options.attack !== undefined && options.attack !== 'none' ? options.attack : undefined;
  let attack: AttackSummary | undefined;
  if (attackKind) {
    if (attackKind === 'label-flip' && (train.numClasses < 2 || !(train.y instanceof Int32Array))) {
      throw new Error(`--attack label-flip: needs a classification dataset; ${options.dataset} has regression targets`);
    }
    attack = {
      kind: attackKind,
      scale: attackKind === 'label-flip' ? null : (options.attackScale ?? DEFAULT_ATTACK_SCALE[attackKind]),
      fraction: options.malicious!,
      nodes: pickMalicious(options.seed, options.nodes, options.malicious!),
    };
  }
  const nodeAttack: NodeAttack | undefined = attack
    ? { kind: attack.kind, scale: attack.scale ?? 0, nodes: attack.nodes }
    : undefined;
  return {
    strategyConfig,
    minNodes,
    data,
    train,
    test,
    spec,
    layout,
    parts,
    report,
    initial,
    ...(attack ? { attack } : {}),
    ...(nodeAttack ? { nodeAttack } : {}),
  };
}

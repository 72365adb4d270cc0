/**
 * A simulated federated run: load data, partition it, start virtual nodes in worker threads, and drive
 * the same RoundEngine a deployed coordinator uses. Returns the metrics and the final model.
 */
import { availableParallelism } from 'node:os';
import { weightsSha256 } from '../model/hash.js';
import { loadDatasetSpec, type LoadedData } from '../data/load.js';
import { featureSize, subset, type Dataset } from '../data/types.js';
import { derivedImageFeature, parsePartitionSpec, partition, partitionReport, type PartitionReport } from '../core/partition.js';
import { Rng } from '../core/rng.js';
import { makeLayout, type TensorSlot } from '../core/params.js';
import { builtinModel, BUILTIN_MODELS, initialWeights, tensorSpecs, type BuiltinModel, type ModelSpec } from '../model/spec.js';
import { ensureTfjs, specFromModelJson } from '../model/tfjs.js';
import { makeTrainer } from '../model/make-trainer.js';
import { DEFAULT_LR } from '../nn/optimizer.js';
import { minUpdates, parseStrategy, Strategy } from '../engine/strategy.js';
import { sampleCount } from '../core/sampling.js';
import { DEFAULT_ATTACK_SCALE, type AttackKind } from '../core/robust.js';
import type { NodeAttack } from '../node/host.js';
import { RoundEngine, type RoundRecord } from '../engine/round-engine.js';
import { WorkerPoolTransport } from './pool.js';
import { parseCompression } from '../core/compress-update.js';
import { shareDataset } from './shared-data.js';
import { maliciousCount, resolveOptions, type ResolvedOptions, type SimulationOptions } from './options.js';

export interface SimulationResult {
  options: ResolvedOptions;
  spec: ModelSpec;
  layout: TensorSlot[];
  weights: Float32Array;
  rounds: RoundRecord[];
  reachedTarget: boolean;
  partition: PartitionReport;
  seconds: number;
  bytesSent: number;
  bytesReceived: number;
  modelSha256: string;
  trainer: string;
  data: LoadedData;
  /** The simulated attack, when there was one: its kind, strength and the Byzantine node ids. */
  attack?: AttackSummary;
}

export interface AttackSummary {
  kind: AttackKind;
  /** The strength used (sign-flip / scale factor, gaussian sigma); null for label-flip. */
  scale: number | null;
  /** The --malicious fraction asked for. */
  fraction: number;
  /** Byzantine node ids, ascending: floor(fraction * nodes) drawn with Rng(seed).fork('malicious'). */
  nodes: number[];
}

/** The Byzantine nodes of a run, fixed by the run seed alone (an independent 'malicious' stream). */
export function pickMalicious(seed: number, nodes: number, fraction: number): number[] {
  return new Rng(seed).fork('malicious').sample(nodes, maliciousCount(fraction, nodes)).sort((a, b) => a - b);
}

/**
 * Checks before any work that every round will have enough updates for the strategy (Krum needs
 * n >= 2f + 3, Bulyan n >= 4f + 3) and returns the engine's minNodes: a round that loses nodes below
 * that many is then skipped rather than failing the run. The sample size itself is not changed.
 */
function checkRoundSize(o: ResolvedOptions, strategy: ReturnType<typeof parseStrategy>): number {
  const need = minUpdates(strategy);
  const perRound = sampleCount(o.nodes, o.fraction, o.minNodes ?? 1);
  if (perRound < need) {
    throw new Error(`--strategy ${o.strategy}: needs at least ${need} updates per round, but a round samples ${perRound} of ${o.nodes} nodes` +
      ' (raise --nodes, --fraction or --min-nodes, or lower f)');
  }
  return Math.max(o.minNodes ?? 1, need);
}


/** The model spec a --model value names: a built-in or a path to a tfjs model.json. */
export async function resolveModel(name: string, train: Dataset): Promise<{ spec: ModelSpec; weights: Float32Array | null }> {
  if ((BUILTIN_MODELS as readonly string[]).includes(name)) return { spec: builtinModel(name as BuiltinModel, train.featureShape, train.numClasses), weights: null };
  if (!name.endsWith('.json')) throw new Error(`--model: '${name}' is not one of ${BUILTIN_MODELS.join(', ')} nor a path to a tfjs model.json`);
  await ensureTfjs();
  const r = await specFromModelJson(name);
  if (r.spec.inputShape.reduce((a, b) => a * b, 1) !== featureSize(train)) {
    throw new Error(`--model: ${name} takes inputs of shape [${r.spec.inputShape.join(',')}], the data has [${train.featureShape.join(',')}]`);
  }
  return r;
}

function partitionInput(data: Dataset, spec: ReturnType<typeof parsePartitionSpec>) {
  const input = { labels: data.y, numClasses: data.numClasses } as Parameters<typeof partition>[1];
  if (spec.kind === 'feature') {
    const col = data.columns?.indexOf(spec.name) ?? -1;
    if (col >= 0) {
      const f = featureSize(data);
      input.feature = Float64Array.from({ length: data.n }, (_, i) => data.x[i * f + col]);
    } else if (data.extra?.[spec.name]) {
      input.feature = data.extra[spec.name].map(Number);
    } else {
      input.feature = derivedImageFeature(data.x, featureSize(data), spec.name);
    }
  }
  if (spec.kind === 'natural') {
    const ids = data.extra?.[spec.column];
    if (!ids) throw new Error(`--partition natural:${spec.column}: the dataset has no kept column '${spec.column}' (for CSV add keep=${spec.column})`);
    input.ids = ids;
  }
  return input;
}

export async function runSimulation(input: SimulationOptions, onRound?: (r: RoundRecord) => void): Promise<SimulationResult> {
  const o = resolveOptions(input);
  const strategyConfig = parseStrategy(o.strategy);
  const compression = parseCompression(o.compression);
  const minNodes = checkRoundSize(o, strategyConfig);
  const partitionSpec = parsePartitionSpec(o.partition);
  const data = loadDatasetSpec(o.dataset);
  const train = o.limitTrain && o.limitTrain < data.train.n ? subset(data.train, Array.from({ length: o.limitTrain }, (_, i) => i)) : data.train;
  const test = o.limitTest && o.limitTest < data.test.n ? subset(data.test, Array.from({ length: o.limitTest }, (_, i) => i)) : data.test;
  const model = await resolveModel(o.model, train);
  const spec: ModelSpec = {
    ...model.spec,
    optimizer: {
      name: o.optimizer ?? model.spec.optimizer.name,
      lr: o.lr ?? (o.optimizer && o.optimizer !== model.spec.optimizer.name ? DEFAULT_LR[o.optimizer] : model.spec.optimizer.lr),
    },
  };
  const layout = makeLayout(tensorSpecs(spec));
  const rng = new Rng(o.seed);
  const parts = partition(partitionSpec, partitionInput(train, partitionSpec), o.nodes, rng.fork('partition'));
  const report = partitionReport(parts, train.y, train.numClasses);
  const initial = model.weights ?? initialWeights(tensorSpecs(spec), rng.fork('init'));
  const attackKind = o.attack !== undefined && o.attack !== 'none' ? o.attack : undefined;
  let attack: AttackSummary | undefined;
  if (attackKind) {
    if (attackKind === 'label-flip' && (train.numClasses < 2 || !(train.y instanceof Int32Array))) {
      throw new Error(`--attack label-flip: needs a classification dataset; ${o.dataset} has regression targets`);
    }
    attack = {
      kind: attackKind,
      scale: attackKind === 'label-flip' ? null : o.attackScale ?? DEFAULT_ATTACK_SCALE[attackKind],
      fraction: o.malicious!,
      nodes: pickMalicious(o.seed, o.nodes, o.malicious!),
    };
  }
  const nodeAttack: NodeAttack | undefined = attack ? { kind: attack.kind, scale: attack.scale ?? 0, nodes: attack.nodes } : undefined;
  const workers = o.workers ?? Math.max(1, Math.min(availableParallelism(), o.nodes));
  const started = performance.now();
  const transport = await WorkerPoolTransport.start({
    data: shareDataset(train), parts, validationFraction: o.validationFraction, seed: o.seed, spec, trainer: o.trainer,
    ...(nodeAttack ? { attack: nodeAttack } : {}),
  }, workers, compression.ef);
  const evaluator = await makeTrainer(spec, o.trainer);
  try {
    const engine = new RoundEngine({
      layout, strategy: new Strategy(strategyConfig), transport, initial, seed: o.seed, rounds: o.rounds,
      fraction: o.fraction, minNodes, evalFraction: o.evalFraction,
      local: { epochs: o.localEpochs, batchSize: o.batchSize, optimizer: spec.optimizer },
      targetAccuracy: o.targetAccuracy,
      centralEval: (w) => evaluator.evaluate(w, test),
      onRound: (r) => onRound?.(r), compression,
    });
    const run = await engine.run();
    const traffic = transport.traffic();
    return {
      options: o, spec, layout, weights: run.weights, rounds: run.rounds, reachedTarget: run.reachedTarget,
      partition: report, seconds: (performance.now() - started) / 1000, bytesSent: traffic.sent, bytesReceived: traffic.received,
      modelSha256: weightsSha256(run.weights), trainer: transport.trainerKind, data: { ...data, train, test },
      ...(attack ? { attack } : {}),
    };
  } finally {
    evaluator.dispose();
    await transport.close();
  }
}

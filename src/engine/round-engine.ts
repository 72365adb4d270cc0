/**
 * The RoundEngine: one federated run, round by round. It samples nodes, sends train requests through a
 * Transport, validates and fuses the replies with the Strategy, evaluates, and records metrics.
 * It knows nothing of sockets or threads; failures (errors, timeouts, invalid updates) arrive as data.
 */
import { Rng } from '../core/rng.js';
import type { TensorSlot } from '../core/params.js';
import type { EvalOutcome, TrainConfig } from '../model/trainer.js';
import { encodeTrainRequest, encodeTrainRequestHead, trainRequestBody, type TrainRequest } from './messages.js';
import { evaluateNodes, personalizedAccuracy } from './evaluate-nodes.js';
import type { EvalResult, Strategy, TrainResult } from './strategy.js';
import type { Transport } from './transport.js';
import { secureTrainRound, type SecureAggregationOptions } from './secure-round.js';
import { compressionLabel, reconstructUpdate, type CompressionSpec } from '../core/compress-update.js';
import { parseTrainReply } from './train-reply.js';
import { InOrderFusion } from './in-order-fusion.js';
import { dpWords, type DpNoiseSource } from './dp-noise.js';
import type { NodeFailure, RoundRecord, RunResult } from './round-record.js';
import { assertEngineCombination } from './run-rules.js';
import {
  closeRoundInVirtualTime,
  samplesProcessed,
  waitUntilOnline,
  type RequestCost,
  type SimulatedClock,
} from './virtual-time.js';

export type { NodeFailure, RoundRecord, RunResult } from './round-record.js';

export interface EngineOptions {
  layout: readonly TensorSlot[];
  strategy: Strategy;
  transport: Transport;
  initial: Float32Array;
  seed: number;
  rounds: number;
  fraction: number;
  /** Fewest nodes a round needs to be fused. */
  minNodes: number;
  /** Fraction of nodes asked for federated evaluation on their validation split (0 = none). */
  evalFraction: number;
  local: Pick<TrainConfig, 'epochs' | 'batchSize' | 'optimizer'>;
  targetAccuracy?: number;
  centralEval?: (weights: Float32Array) => Promise<EvalOutcome>;
  /**
   * Simulation: round r's central evaluation runs while round r+1 trains (its nodes do not need it). Records still
   * come in order, each (with onRound) before the next round fuses; a run that reaches its target accuracy stops
   * there, the round trained meanwhile dropped unfused. Same records and models as without it, but for `seconds`:
   * the rounds overlap, so a record's seconds run from the previous record (or its round's start, if later). Not
   * with a clock or secure aggregation (they are evaluated in step).
   */
  evaluateBehind?: boolean;
  /** Called after each fused round, before the next starts: the place to commit a checkpoint. */
  onRound?: (record: RoundRecord, global: Float32Array, strategy: Strategy) => void | Promise<void>;
  /** Resume: the first round to run (the rounds before it are already committed). Default 1. */
  startRound?: number;
  /**
   * Over-selection (FedScale, Bonawitz et al. 2019): ask ceil(k * (1 + overSelect)) nodes and fuse the
   * first k that answer; the rest are stragglers. Default 0.
   */
  overSelect?: number;
  /** Per-node cap on local steps for this round (work sized to capability); undefined = no cap. */
  maxStepsFor?: (nodeId: number) => number | undefined;
  /** Checked before each round: 'stop' ends the run, 'pause' waits until it changes. */
  control?: () => 'run' | 'pause' | 'stop';
  /** Waits for nodes before a round (deployment: until minNodes are connected); default: no wait. */
  waitForNodes?: (minNodes: number) => Promise<void>;
  /** Secure aggregation (secure-round.ts): the coordinator sees only the sum of masked updates. */
  secure?: SecureAggregationOptions;
  /** How nodes compress their updates (compress-update.ts); absent or kind none = plain float32. */
  compression?: CompressionSpec;
  /**
   * Simulation with device profiles: only online nodes are selected, and a round keeps the first results
   * by simulated finish time (deadlineSeconds, overSelect) rather than by real arrival order.
   */
  clock?: SimulatedClock;
  /** Simulated seconds a round waits before closing (with clock). */
  deadlineSeconds?: number;
  /**
   * DP-FedAvg: where its noise and its node sampling come from (dp-noise.ts). Default 'csprng', the only choice
   * whose noise nobody can regenerate; 'seeded' is for simulations that must repeat bit for bit.
   */
  dpNoise?: DpNoiseSource;
}

/** The nodes online at the clock's time, after waiting (in simulated time) for at least minNodes of them. */
function online(clock: SimulatedClock, ids: number[], minNodes: number): number[] {
  waitUntilOnline(clock, ids, Math.min(minNodes, ids.length));
  return clock.online(ids);
}

export class RoundEngine {
  private global: Float32Array;
  /** Where each round's updates are summed (InOrderFusion), reused: rounds fuse one after another. */
  private fusionSums: Float64Array | null = null;

  constructor(private readonly options: EngineOptions) {
    if (!Number.isInteger(options.rounds) || options.rounds < 1)
      throw new Error(`rounds must be a whole number >= 1, got ${options.rounds}`);
    this.global = new Float32Array(options.initial);
    assertEngineCombination(options);
    // A checkpoint from before the ledger was kept: charge its rounds at q = 1, the most they can have cost.
    const missing = (options.startRound ?? 1) - 1 - (options.strategy.privacySpent()?.accounted ?? Infinity);
    for (let k = 0; k < missing; k++) options.strategy.recordPrivacyRound(1);
  }

  /** The seed a node uses for its shuffling in a round: fixed by run seed, round and node alone. */
  static nodeSeed(seed: number, round: number, nodeId: number): number {
    return new Rng(seed).fork(`train:${round}:${nodeId}`).nextU32();
  }

  /** A node's train config for a round: local settings, its seed, its step cap, the run's compression. */
  private trainConfig(round: number, nodeId: number): TrainConfig {
    const maxSteps = this.options.maxStepsFor?.(nodeId);
    return {
      ...this.options.local,
      proxMu: this.options.strategy.proxMu,
      seed: RoundEngine.nodeSeed(this.options.seed, round, nodeId),
      ...this.options.strategy.nodeConfig(),
      ...(maxSteps !== undefined ? { maxSteps } : {}),
      ...(this.compressing() ? { compression: this.options.compression } : {}),
    };
  }

  /**
   * Sends the round to every selected node and resolves once `needed` valid results are in or every node
   * has answered or failed; nodes still working then are stragglers, recorded as such. With `fusion`, each
   * result is also handed to it as it arrives (and each failure), so the mean delta is summed meanwhile.
   */
  private async trainRound(
    round: number,
    selected: number[],
    needed: number,
    fusion: InOrderFusion | null,
  ): Promise<{ results: TrainResult[]; failures: NodeFailure[] }> {
    const { layout, strategy, transport } = this.options;
    const results: TrainResult[] = [];
    const failures: NodeFailure[] = [];
    let closed = false;
    let settle: () => void = () => {};
    const enough = new Promise<void>((resolve) => (settle = resolve));
    const clock = this.options.clock;
    const costs = new Map<number, RequestCost>();
    const control = strategy.control(this.global.length);
    // Every node gets the same weights: where the transport takes a frame in parts, they are encoded once.
    const body = transport.requestParts ? trainRequestBody(layout, this.global, control) : null;
    const trainOne = async (nodeId: number): Promise<void> => {
      const config = this.trainConfig(round, nodeId);
      try {
        const request: TrainRequest = {
          round,
          nodeId,
          mode: strategy.mode,
          config,
          weights: this.global,
          ...(control ? { control } : {}),
        };
        let sentBytes: number;
        let reply: Uint8Array;
        if (body) {
          const head = encodeTrainRequestHead(layout, request);
          sentBytes = head.length + body.length;
          reply = await transport.requestParts!(nodeId, head, body);
        } else {
          const frame = encodeTrainRequest(layout, request);
          sentBytes = frame.length;
          reply = await transport.request(nodeId, frame);
        }
        // Replies often come in bursts (a verify-pool batch): each is decoded in its turn, not all in one.
        if (transport.pace) await transport.pace();
        const parsed = parseTrainReply(layout, reply, round, nodeId, this.global.length);
        if (closed) throw new Error('straggler: answered after the round closed');
        const result: TrainResult = {
          nodeId,
          numExamples: parsed.numExamples,
          steps: parsed.steps,
          vector: this.updateOf(parsed.vector, parsed.compression, this.global),
          metrics: parsed.metrics,
          ...(parsed.controlDelta ? { controlDelta: parsed.controlDelta } : {}),
        };
        results.push(result);
        costs.set(nodeId, {
          nodeId,
          downBytes: sentBytes,
          upBytes: reply.length,
          samples: samplesProcessed(parsed.steps, config.batchSize, config.epochs, parsed.numExamples),
        });
        fusion?.settle(nodeId, result);
        // Under a clock every result is computed; who made it is decided by simulated time below.
        if (!clock && results.length >= needed) settle();
      } catch (e) {
        if (closed) return;
        failures.push({ nodeId, error: (e as Error).message });
        fusion?.settle(nodeId, null);
      }
    };
    // Request by request, with the transport's pace in between: a network transport lets its event loop serve
    // heartbeats and early replies while thousands of requests are encoded and sent. Without pace, one pass.
    const dispatch = async (): Promise<void> => {
      const pending: Promise<void>[] = [];
      for (const nodeId of selected) {
        pending.push(trainOne(nodeId));
        if (transport.pace) await transport.pace();
      }
      await Promise.all(pending);
    };
    await Promise.race([enough, dispatch()]);
    closed = true;
    const answered = new Set([...results.map((r) => r.nodeId), ...failures.map((f) => f.nodeId)]);
    for (const nodeId of selected)
      if (!answered.has(nodeId)) failures.push({ nodeId, error: 'straggler: still working when the round closed' });
    results.sort((a, b) => a.nodeId - b.nodeId);
    failures.sort((a, b) => a.nodeId - b.nodeId);
    return clock
      ? closeRoundInVirtualTime(clock, results, failures, costs, needed, this.options.deadlineSeconds)
      : { results, failures };
  }

  /** The buffer a round's fusion sums in: one for the whole run (a round's fusion ends before the next starts). */
  private sumsFor(global: Float32Array): Float64Array {
    if (this.fusionSums?.length !== global.length) this.fusionSums = new Float64Array(global.length);
    return this.fusionSums;
  }

  private compressing(): boolean {
    return this.options.compression !== undefined && this.options.compression.kind !== 'none';
  }

  /** A reply's vector as the strategy takes it: compressed exactly as asked (or not at all), deltas made whole. */
  private updateOf(vector: Float32Array, used: CompressionSpec | undefined, global: Float32Array): Float32Array {
    const asked = this.compressing() ? compressionLabel(this.options.compression!) : 'none';
    const got = used ? compressionLabel(used) : 'none';
    if (got !== asked) throw new Error(`update is compressed as '${got}', the run asked for '${asked}'`);
    return used ? reconstructUpdate(used, vector, global, this.options.strategy.mode === 'gradient') : vector;
  }

  private evaluateRound(round: number, nodes: number[]): Promise<EvalResult[]> {
    return evaluateNodes(this.options.layout, this.options.transport, round, nodes, this.global);
  }

  async run(): Promise<RunResult> {
    const options = this.options;
    const rng = new Rng(options.seed);
    const records: RoundRecord[] = [];
    let reachedTarget = false;
    const behind = options.evaluateBehind === true && !options.clock && !options.secure;
    /** evaluateBehind: the previous round's evaluation and record, resolving true when it reached the target. */
    let pending: Promise<boolean> | null = null;
    let lastRecordAt = 0;
    for (let round = options.startRound ?? 1; round <= options.rounds; round++) {
      let state = options.control?.() ?? 'run';
      while (state === 'pause') {
        await new Promise((r) => setTimeout(r, 100));
        state = options.control!();
      }
      if (state === 'stop') break;
      await options.waitForNodes?.(options.minNodes);
      const started = performance.now();
      const before = options.transport.traffic();
      const ids = options.clock
        ? online(options.clock, options.transport.nodeIds(), options.minNodes)
        : options.transport.nodeIds();
      const dpNoise = options.dpNoise ?? 'csprng';
      const wanted =
        ids.length >= options.minNodes
          ? options.strategy.configureTrain(
              ids,
              options.fraction,
              options.minNodes,
              rng.fork(`sample:${round}`),
              dpWords(dpNoise, options.seed, `dp-sample:${round}`),
            )
          : [];
      const overSelectCount = Math.ceil(wanted.length * (options.overSelect ?? 0));
      const standbyNodes =
        overSelectCount > 0
          ? rng
              .fork(`over:${round}`)
              .shuffle(ids.filter((id) => !wanted.includes(id)))
              .slice(0, overSelectCount)
          : [];
      const selected = [...wanted, ...standbyNodes].sort((a, b) => a - b);
      const secure =
        options.secure && selected.length > 0
          ? await secureTrainRound({
              round,
              selected,
              layout: options.layout,
              transport: options.transport,
              global: this.global,
              options: options.secure,
              configFor: (nodeId) => this.trainConfig(round, nodeId),
              session: `round-${round}-${globalThis.crypto.randomUUID()}`,
            })
          : undefined;
      // Summed as updates arrive when that gives the batch fusion's very bits (not under a clock: simulated time
      // picks the results only once the round is over).
      const inOrder =
        !secure && !options.clock && options.strategy.fusesMeanDelta
          ? new InOrderFusion(selected, this.global, this.sumsFor(this.global))
          : null;
      const training =
        secure ?? this.trainRound(round, selected, overSelectCount > 0 ? wanted.length : selected.length, inOrder);
      if (pending) {
        const previous = pending;
        pending = null;
        // Settled here without its errors, for the two ways out below; the round itself is awaited after the
        // previous round's record.
        const drained = Promise.resolve(training).catch(() => {});
        let stop: boolean;
        try {
          stop = await previous;
        } catch (e) {
          await drained;
          throw e;
        }
        if (stop) {
          // The round trained meanwhile is dropped, its errors with it: the run ends with the model that reached the
          // target, as it would have in step.
          await drained;
          reachedTarget = true;
          break;
        }
      }
      const { results, failures } = await training;
      const fused = results.length >= options.minNodes && results.length > 0 && (!secure || secure.meanDelta !== null);
      if (fused && secure) this.global = options.strategy.applyMeanDelta(this.global, secure.meanDelta!);
      else if (fused && inOrder) {
        const pace = options.transport.pace?.bind(options.transport);
        this.global = options.strategy.applyMeanDelta(this.global, await inOrder.finish(pace));
      } else if (fused) {
        const context = {
          round,
          seed: options.seed,
          sampled: wanted.length,
          population: ids.length,
          expectedClients: options.fraction * ids.length,
          noise: dpNoise,
        };
        this.global = options.strategy.aggregateTrain(this.global, results, context);
      }
      // Poisson sampling includes each eligible node with probability fraction; a round that fused nothing released nothing.
      const samplingRate = fused ? options.fraction : 0;
      options.strategy.recordPrivacyRound(samplingRate);
      const privacy = options.strategy.privacySpent();
      const evaluating = options.evalFraction > 0 && ids.length > 0;
      const evals = evaluating
        ? await this.evaluateRound(
            round,
            options.strategy.configureEvaluate(ids, options.evalFraction, 1, rng.fork(`eval:${round}`)),
          )
        : [];
      const federatedEval = evaluating ? options.strategy.aggregateEvaluate(evals) : { loss: NaN, accuracy: NaN };
      const after = options.transport.traffic();
      const global = this.global;
      const finish = async (): Promise<boolean> => {
        const central = options.centralEval ? await options.centralEval(global) : { loss: NaN, accuracy: NaN };
        const trainN = results.reduce((a, r) => a + r.numExamples, 0);
        const record: RoundRecord = {
          round,
          selected,
          contributed: results.map((r) => r.nodeId),
          examples: results.map((r) => r.numExamples),
          failures,
          fused,
          trainLoss: results.reduce((a, r) => a + r.metrics.loss * r.numExamples, 0) / trainN,
          trainAccuracy: results.reduce((a, r) => a + r.metrics.accuracy * r.numExamples, 0) / trainN,
          federatedLoss: federatedEval.loss,
          federatedAccuracy: federatedEval.accuracy,
          testLoss: central.loss,
          testAccuracy: central.accuracy,
          bytesSent: after.sent - before.sent,
          bytesReceived: after.received - before.received,
          seconds: (performance.now() - (behind ? Math.max(started, lastRecordAt) : started)) / 1000,
          ...(privacy ? { epsilon: privacy.epsilon, delta: privacy.delta, samplingRate, noiseSource: dpNoise } : {}),
          ...(options.strategy.dpClipNorm !== undefined ? { clipNorm: options.strategy.dpClipNorm } : {}),
          ...(options.clock ? { simTime: options.clock.now() } : {}),
          ...personalizedAccuracy(evals),
        };
        records.push(record);
        lastRecordAt = performance.now();
        await options.onRound?.(record, global, options.strategy);
        const accuracy = options.centralEval ? central.accuracy : federatedEval.accuracy;
        return options.targetAccuracy !== undefined && accuracy >= options.targetAccuracy;
      };
      if (behind) {
        pending = finish();
        pending.catch(() => {}); // handled when the next round (or the end of the run) awaits it
      } else if (await finish()) {
        reachedTarget = true;
        break;
      }
    }
    if (pending && (await pending)) reachedTarget = true;
    return { rounds: records, weights: this.global, reachedTarget };
  }
}

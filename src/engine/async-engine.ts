/**
 * Buffered asynchronous federated learning (FedBuff, Nguyen et al. 2022): `concurrency` nodes train at
 * once, each from the global model current when it was sent work; arriving updates (deltas against that
 * model) go into a buffer, and every `bufferSize` arrivals the server fuses them with staleness weighting
 * (core/fedbuff.ts) and a server learning rate, and the freed nodes get the new model.
 *
 * Two clocks, one engine:
 * - with a SimulatedClock (simulation) results are computed for real but handled in simulated-finish order
 *   (discrete events; ties by dispatch order), so a run is deterministic by seed whatever the thread timing;
 * - without one (deployment) results are handled in real arrival order over the network transport.
 * Each fusion is one record (round = the new model version) carrying the staleness of every fused update.
 */
import { Rng } from '../core/rng.js';
import { applyDelta } from '../core/aggregate.js';
import { bufferedDelta, checkFedBuffOptions, type BufferedUpdate } from '../core/fedbuff.js';
import type { TrainConfig } from '../model/trainer.js';
import { encodeTrainRequest } from './messages.js';
import { RoundEngine, type EngineOptions, type NodeFailure, type RoundRecord, type RunResult } from './round-engine.js';
import type { TrainResult } from './strategy.js';
import { assertEngineCombination } from './run-rules.js';
import { parseTrainReply } from './train-reply.js';
import { samplesProcessed } from './virtual-time.js';

export interface AsyncEngineOptions
  extends Pick<
    EngineOptions,
    | 'layout'
    | 'strategy'
    | 'transport'
    | 'initial'
    | 'seed'
    | 'local'
    | 'targetAccuracy'
    | 'centralEval'
    | 'onRound'
    | 'startRound'
    | 'control'
    | 'waitForNodes'
    | 'clock'
  > {
  /** Fusions (server model versions) to run. */
  rounds: number;
  /** K: updates fused at a time. */
  bufferSize: number;
  /** Nodes training at once (>= K). */
  concurrency: number;
  /** eta_g: the step taken along the buffered, staleness-weighted mean delta. */
  serverLr: number;
}

type Outcome = { ok: true; result: TrainResult; upBytes: number } | { ok: false; error: string };

interface Flight {
  seq: number;
  nodeId: number;
  /** The model version the node trains from, and that model (its delta is taken against it). */
  version: number;
  base: Float32Array;
  /** Simulated dispatch time (with a clock). */
  sentAt: number;
  downBytes: number;
  samplesCap: (steps: number, numExamples: number) => number;
  outcome?: Outcome;
  done: Promise<Flight>;
}

interface Arrival extends BufferedUpdate {
  result: TrainResult;
}

export class AsyncEngine {
  private global: Float32Array;

  constructor(private readonly options: AsyncEngineOptions) {
    if (!Number.isInteger(options.rounds) || options.rounds < 1)
      throw new Error(`rounds must be a whole number >= 1, got ${options.rounds}`);
    checkFedBuffOptions(options);
    assertEngineCombination({ strategy: options.strategy, fedBuff: options });
    this.global = new Float32Array(options.initial);
  }

  /** Sends the current model to a node; the flight settles (never rejects) with its outcome. */
  private dispatch(nodeId: number, version: number, seq: number): Flight {
    const { layout, strategy, transport, local, seed, clock } = this.options;
    const config: TrainConfig = { ...local, proxMu: strategy.proxMu, seed: RoundEngine.nodeSeed(seed, seq, nodeId) };
    const frame = encodeTrainRequest(layout, {
      round: version,
      nodeId,
      mode: strategy.mode,
      config,
      weights: this.global,
    });
    const flight: Flight = {
      seq,
      nodeId,
      version,
      base: this.global,
      sentAt: clock?.now() ?? 0,
      downBytes: frame.length,
      samplesCap: (steps, n) => samplesProcessed(steps, config.batchSize, config.epochs, n),
      done: Promise.resolve(null as unknown as Flight),
    };
    const length = this.global.length;
    flight.done = transport
      .request(nodeId, frame)
      .then((reply) => {
        const parsed = parseTrainReply(layout, reply, version, nodeId, length);
        // FedBuff runs never ask for compression (refused at configuration): a compressed reply is a delta, not weights.
        if (parsed.compression) throw new Error('update is compressed, the run asked for none');
        flight.outcome = {
          ok: true,
          upBytes: reply.length,
          result: {
            nodeId,
            numExamples: parsed.numExamples,
            steps: parsed.steps,
            vector: parsed.vector,
            metrics: parsed.metrics,
          },
        };
      })
      .catch((e: Error) => {
        flight.outcome = { ok: false, error: e.message };
      })
      .then(() => flight);
    return flight;
  }

  /** Simulated finish time: dispatch + download, work and upload; a failure is known at once. */
  private finishAt(flight: Flight): number {
    const out = flight.outcome!;
    if (!out.ok || !this.options.clock) return flight.sentAt;
    const samples = flight.samplesCap(out.result.steps, out.result.numExamples);
    return (
      flight.sentAt +
      this.options.clock.duration({ nodeId: flight.nodeId, downBytes: flight.downBytes, upBytes: out.upBytes, samples })
    );
  }

  /** The next flight to handle: earliest simulated finish (all in flight computed first), or first to arrive. */
  private async next(flights: Map<number, Flight>): Promise<Flight> {
    const clock = this.options.clock;
    if (!clock) return Promise.race([...flights.values()].map((f) => f.done));
    const done = await Promise.all([...flights.values()].map((f) => f.done));
    const first = done.reduce((a, b) =>
      this.finishAt(b) < this.finishAt(a) || (this.finishAt(b) === this.finishAt(a) && b.seq < a.seq) ? b : a,
    );
    clock.advanceTo(this.finishAt(first));
    return first;
  }

  /** Nodes that may take work now: online (with a clock), eligible, not already training. */
  private idle(flights: Map<number, Flight>): number[] {
    const ids = this.options.transport.nodeIds();
    return (this.options.clock ? this.options.clock.online(ids) : ids).filter((id) => !flights.has(id));
  }

  /** Waits for a node to be free: simulated time jumps to the next node coming online; real time waits. */
  private async waitForIdle(): Promise<void> {
    const clock = this.options.clock;
    if (clock) {
      const t = clock.nextOnline(this.options.transport.nodeIds());
      if (!Number.isFinite(t)) throw new Error('asynchronous run: no node is online now or will be');
      clock.advanceTo(t);
      return;
    }
    await this.options.waitForNodes?.(1);
    await new Promise((r) => setTimeout(r, 100));
  }

  async run(): Promise<RunResult> {
    const options = this.options;
    const rng = new Rng(options.seed).fork('fedbuff');
    const records: RoundRecord[] = [];
    const flights = new Map<number, Flight>();
    const maxFailuresInARow = 10 + 3 * options.concurrency;
    let version = (options.startRound ?? 1) - 1;
    let seq = version * options.concurrency * 1000; // resumed runs draw fresh node seeds
    let buffer: Arrival[] = [];
    let failures: NodeFailure[] = [];
    let asked: number[] = [];
    let failedInARow = 0;
    let started = performance.now();
    let before = options.transport.traffic();
    let reachedTarget = false;
    await options.waitForNodes?.(options.concurrency);
    while (version < options.rounds) {
      let state = options.control?.() ?? 'run';
      while (state === 'pause') {
        await new Promise((r) => setTimeout(r, 100));
        state = options.control!();
      }
      if (state === 'stop') break;
      let idle = this.idle(flights);
      while (flights.size < options.concurrency && idle.length > 0) {
        const nodeId = idle[rng.fork(`pick:${seq}`).int(idle.length)];
        idle = idle.filter((id) => id !== nodeId);
        flights.set(nodeId, this.dispatch(nodeId, version, seq++));
        asked.push(nodeId);
      }
      if (flights.size === 0) {
        await this.waitForIdle();
        continue;
      }
      const flight = await this.next(flights);
      flights.delete(flight.nodeId);
      const out = flight.outcome!;
      if (!out.ok) {
        failures.push({ nodeId: flight.nodeId, error: out.error });
        if (++failedInARow >= maxFailuresInARow)
          throw new Error(
            `asynchronous run: ${failedInARow} updates in a row failed, the last: node ${flight.nodeId}: ${out.error}`,
          );
        continue;
      }
      failedInARow = 0;
      const delta = new Float32Array(flight.base.length);
      for (let j = 0; j < delta.length; j++) delta[j] = out.result.vector[j] - flight.base[j];
      buffer.push({ delta, staleness: version - flight.version, result: out.result });
      if (buffer.length < options.bufferSize) continue;

      this.global = applyDelta(this.global, bufferedDelta(buffer), options.serverLr);
      version++;
      const central = options.centralEval ? await options.centralEval(this.global) : { loss: NaN, accuracy: NaN };
      const results = buffer.map((a) => a.result);
      const trainN = results.reduce((a, r) => a + r.numExamples, 0);
      const after = options.transport.traffic();
      const record: RoundRecord = {
        round: version,
        selected: [...new Set([...asked, ...results.map((r) => r.nodeId), ...failures.map((x) => x.nodeId)])].sort(
          (a, b) => a - b,
        ),
        contributed: results.map((r) => r.nodeId),
        examples: results.map((r) => r.numExamples),
        staleness: buffer.map((a) => a.staleness),
        failures,
        fused: true,
        trainLoss: results.reduce((a, r) => a + r.metrics.loss * r.numExamples, 0) / trainN,
        trainAccuracy: results.reduce((a, r) => a + r.metrics.accuracy * r.numExamples, 0) / trainN,
        federatedLoss: NaN,
        federatedAccuracy: NaN,
        testLoss: central.loss,
        testAccuracy: central.accuracy,
        bytesSent: after.sent - before.sent,
        bytesReceived: after.received - before.received,
        seconds: (performance.now() - started) / 1000,
        ...(options.clock ? { simTime: options.clock.now() } : {}),
      };
      records.push(record);
      await options.onRound?.(record, this.global, options.strategy);
      buffer = [];
      failures = [];
      asked = [];
      started = performance.now();
      before = after;
      if (options.targetAccuracy !== undefined && central.accuracy >= options.targetAccuracy) {
        reachedTarget = true;
        break;
      }
    }
    return { rounds: records, weights: this.global, reachedTarget };
  }
}

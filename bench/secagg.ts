/**
 * Benchmark: what secure aggregation costs per round, against plaintext FedAvg, on the seed MLP's update
 * (784-128-10: 101,770 parameters, plus the weight coordinate secure aggregation adds).
 *
 *   plaintext     FedAvg: each node gets the global model in a train frame and returns its weights in a
 *                 train_result frame; the coordinator decodes them and takes the weighted average.
 *   secagg        Bonawitz et al. 2017, honest-but-curious variant (unsigned adverts, no consistency round).
 *   secagg-signed the malicious-server variant the round engine runs: Ed25519-signed adverts checked by every
 *                 node, t > n/2, and the ConsistencyCheck round (every node signs U3 and checks t signatures).
 *
 * Every message is encoded as the frame the round engine sends (secure-messages.ts) and decoded on the other
 * side, so bytes are real frame bytes (headers included). Seconds are CPU seconds (process.cpuUsage, which
 * also counts the garbage collector's helper threads), not wall time, so other jobs on a loaded machine inflate
 * them less; measured per party: the coordinator's total, and each node's per phase; "round critical path" =
 * coordinator time + the sum over phases of the slowest node in that phase (nodes run in parallel). Local
 * training, identical in every variant, is left out; so is network latency (each secure phase adds a round
 * trip: 1 for plaintext, 4 for secagg, 5 for secagg-signed). Keys and masks come from the CSPRNG, as deployed.
 *
 * Run:  node --import tsx bench/secagg.ts [--nodes 10,50] [--dropout 0,0.1] [--repeats 3]
 *          [--results-dir bench/results] [--report-only]
 * Writes RESULTS_DIR/secagg.json and RESULTS_DIR/secagg.md (--report-only: the table again from the JSON).
 */
import { parseArgs } from 'node:util';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadavg } from 'node:os';
import { makeLayout } from '../src/core/params.js';
import { Rng } from '../src/core/rng.js';
import { weightedAverage } from '../src/core/aggregate.js';
import { builtinModel, tensorSpecs } from '../src/model/spec.js';
import { decodeMessage, encodeTrainReply, encodeTrainRequest } from '../src/engine/messages.js';
import { decodeSecAggFrame, encodeSecAggFrame, largestScaleBits } from '../src/engine/secure-messages.js';
import { DEFAULT_SECAGG } from '../src/engine/secure-round.js';
import { decodeWeightedAverage, encodeWeightedUpdate, fixedPointConfig } from '../src/core/secagg/fixed-point.js';
import { SecAggClient, SecAggServer, type ServerInbound, type ServerOutbound } from '../src/core/secagg/protocol.js';
import { identityPublicKey, pinnedPeerTrust, simulationIdentityKey } from '../src/core/secagg/signing.js';
import type { SecAggMessage } from '../src/core/secagg/codec.js';
import { numberFlag, provenance, REPO, resultFiles, writeAtomic } from './support/results-io.js';

type Variant = 'plaintext' | 'secagg' | 'secagg-signed';
type Report = { measurements: Measurement[]; command: string } & ReturnType<typeof provenance> & {
    load_average: number[][];
  };
const VARIANTS: readonly Variant[] = ['plaintext', 'secagg', 'secagg-signed'];

interface Measurement {
  variant: Variant;
  nodes: number;
  dropout: number;
  /** Nodes whose update is in the result. */
  included: number;
  bytesToNodes: number;
  bytesFromNodes: number;
  coordinatorSeconds: number;
  /** Mean over nodes of each node's total CPU seconds in the round. */
  meanNodeSeconds: number;
  criticalPathSeconds: number;
  /** Message exchanges (request/reply) in the round. */
  phases: number;
}

const config = { epochs: 1, batchSize: 32, optimizer: { name: 'sgd' as const, lr: 0.1 }, proxMu: 0, seed: 1 };
const metrics = { loss: 0.3, accuracy: 0.9 };
const cryptoRandomBytes = (n: number) => globalThis.crypto.getRandomValues(new Uint8Array(n));

/** CPU seconds (user + system) of this process while f runs: robust to other jobs on a shared machine. */
function timed<T>(f: () => T): [T, number] {
  const t0 = process.cpuUsage();
  const out = f();
  const d = process.cpuUsage(t0);
  return [out, (d.user + d.system) / 1e6];
}

/** Per phase, each node's seconds; the coordinator's seconds overall; bytes both ways. */
class Ledger {
  coordinator = 0;
  down = 0;
  up = 0;
  private readonly phases: Map<number, number>[] = [];
  private readonly perNode = new Map<number, number>();

  node<T>(phase: number, nodeId: number, f: () => T): T {
    const [out, s] = timed(f);
    const p = (this.phases[phase] ??= new Map());
    p.set(nodeId, (p.get(nodeId) ?? 0) + s);
    this.perNode.set(nodeId, (this.perNode.get(nodeId) ?? 0) + s);
    return out;
  }

  server<T>(f: () => T): T {
    const [out, s] = timed(f);
    this.coordinator += s;
    return out;
  }

  result(variant: Variant, nodes: number, dropout: number, included: number): Measurement {
    const slowest = this.phases.reduce((a, p) => a + Math.max(0, ...p.values()), 0);
    const mean = [...this.perNode.values()].reduce((a, b) => a + b, 0) / Math.max(1, this.perNode.size);
    return {
      variant,
      nodes,
      dropout,
      included,
      bytesToNodes: this.down,
      bytesFromNodes: this.up,
      coordinatorSeconds: this.coordinator,
      meanNodeSeconds: mean,
      criticalPathSeconds: this.coordinator + slowest,
      phases: this.phases.length,
    };
  }
}

const layout = makeLayout(tensorSpecs(builtinModel('mlp', [28, 28], 10)));
const dim = layout[layout.length - 1].offset + layout[layout.length - 1].size;

function updates(
  nodes: number,
  seed: number,
): { trained: Float32Array[]; numExamples: number[]; global: Float32Array } {
  const rng = new Rng(seed);
  const global = Float32Array.from({ length: dim }, () => 0.05 * rng.normal());
  const trained = Array.from({ length: nodes }, () => global.map((g) => g + 0.01 * rng.normal()));
  return { trained, numExamples: Array.from({ length: nodes }, () => 500 + rng.int(500)), global };
}

function plaintextRound(nodes: number, seed: number): Measurement {
  const { trained, numExamples, global } = updates(nodes, seed);
  const ledger = new Ledger();
  const requests = ledger.server(() =>
    trained.map((_, nodeId) =>
      encodeTrainRequest(layout, { round: 1, nodeId, mode: 'weights', config, weights: global }),
    ),
  );
  const replies = trained.map((vector, nodeId) =>
    ledger.node(0, nodeId, () => {
      decodeMessage(layout, requests[nodeId]);
      return encodeTrainReply(layout, {
        round: 1,
        nodeId,
        numExamples: numExamples[nodeId],
        steps: 1,
        metrics,
        vector,
      });
    }),
  );
  ledger.down = requests.reduce((a, f) => a + f.length, 0);
  ledger.up = replies.reduce((a, f) => a + f.length, 0);
  ledger.server(() => {
    const vectors = replies.map((f) => {
      const m = decodeMessage(layout, f);
      if (m.type !== 'train_result') throw new Error('bench: expected a train_result');
      return m.reply.vector;
    });
    return weightedAverage(vectors, numExamples);
  });
  return ledger.result('plaintext', nodes, 0, nodes);
}

function secureRound(variant: Variant, nodes: number, dropout: number, seed: number): Measurement {
  const signed = variant === 'secagg-signed';
  const { trained, numExamples, global } = updates(nodes, seed);
  const { clip, maxWeight } = DEFAULT_SECAGG;
  const threshold = Math.floor(nodes / 2) + 1;
  const fp = fixedPointConfig({
    scaleBits: largestScaleBits(nodes, clip, maxWeight),
    clip,
    maxWeight,
    maxClients: nodes,
  });
  const session = `bench-${variant}-${nodes}-${seed}`;
  const settings = (nodeId: number) => ({
    session,
    clientId: nodeId + 1,
    threshold,
    scaleBits: fp.scaleBits,
    clip,
    maxWeight,
    maxClients: nodes,
  });
  const publicKeys = Array.from({ length: nodes }, (_, i) => identityPublicKey(simulationIdentityKey(seed, i)));
  const trust = pinnedPeerTrust((id) => publicKeys[id - 1]);
  // Nodes that vanish after sharing keys: the expensive path (their pairwise masks are rebuilt).
  const dropped = new Set(new Rng(seed).fork('drop').sample(nodes, Math.floor(dropout * nodes + 1e-9)));
  const ledger = new Ledger();
  const server = new SecAggServer({ session, threshold, vectorLength: dim + 1, consistencyCheck: signed });
  const clients: SecAggClient[] = [];
  const inputs: Uint32Array[] = [];

  const toNode = (msg: ServerOutbound, nodeId: number) => {
    const frame = ledger.server(() => encodeSecAggFrame(msg, 1, nodeId));
    ledger.down += frame.length;
    return frame;
  };
  const toServer = (frame: Uint8Array) => {
    ledger.up += frame.length;
    return ledger.server(() => decodeSecAggFrame(frame).msg as ServerInbound);
  };
  const phase = <M extends SecAggMessage>(
    p: number,
    live: number[],
    outbound: (nodeId: number) => ServerOutbound,
    step: (nodeId: number, msg: M) => SecAggMessage,
    receive: (m: ServerInbound) => void,
  ) => {
    for (const nodeId of live) {
      const frame = toNode(outbound(nodeId), nodeId);
      const reply = ledger.node(p, nodeId, () =>
        encodeSecAggFrame(step(nodeId, decodeSecAggFrame(frame).msg as M), 1, nodeId),
      );
      ledger.server(() => receive(toServer(reply)));
    }
  };

  const all = [...Array(nodes).keys()];
  // Phase 0: the train request (global model + settings); the node encodes its update and advertises keys.
  for (const nodeId of all) {
    const request = ledger.server(() =>
      encodeTrainRequest(layout, {
        round: 1,
        nodeId,
        mode: 'weights',
        config,
        weights: global,
        secagg: settings(nodeId),
      }),
    );
    ledger.down += request.length;
    const reply = ledger.node(0, nodeId, () => {
      decodeMessage(layout, request);
      const delta = trained[nodeId].map((v, j) => v - global[j]);
      inputs[nodeId] = encodeWeightedUpdate(delta, numExamples[nodeId], fp);
      clients[nodeId] = new SecAggClient({
        id: nodeId + 1,
        session,
        threshold,
        vectorLength: dim + 1,
        randomBytes: cryptoRandomBytes,
        ...(signed ? { identity: { secretKey: simulationIdentityKey(seed, nodeId), trust } } : {}),
      });
      return encodeSecAggFrame(clients[nodeId].advertiseKeys(), 1, nodeId, { metrics });
    });
    ledger.server(() => server.receiveAdvertiseKeys(toServer(reply) as never));
  }
  const roster = ledger.server(() => server.finishAdvertiseKeys());
  phase(
    1,
    all,
    () => roster,
    (n, m) => clients[n].shareKeys(m as never),
    (m) => server.receiveShareKeys(m as never),
  );
  const forwarded = ledger.server(() => server.finishShareKeys());
  const live = all.filter((n) => !dropped.has(n));
  phase(
    2,
    live,
    (n) => forwarded[n],
    (n, m) => clients[n].maskInput(m as never, inputs[n]),
    (m) => server.receiveMaskedInput(m as never),
  );
  let request: ServerOutbound;
  let p = 3;
  if (signed) {
    const check = ledger.server(() => server.finishMaskedInputForConsistency());
    phase(
      p++,
      live,
      () => check,
      (n, m) => clients[n].consistencyCheck(m as never),
      (m) => server.receiveConsistencySignature(m as never),
    );
    request = ledger.server(() => server.finishConsistency());
  } else {
    request = ledger.server(() => server.finishMaskedInput());
  }
  phase(
    p,
    live,
    () => request,
    (n, m) => clients[n].unmask(m as never),
    (m) => server.receiveUnmaskShares(m as never),
  );
  const result = ledger.server(() => {
    const r = server.finishUnmask();
    decodeWeightedAverage(r.sum, fp);
    return r;
  });
  return ledger.result(variant, nodes, dropout, result.included.length);
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)];
}

function markdown(report: Report): string {
  const m = report.measurements;
  const ref = (x: Measurement) => m.find((r) => r.variant === 'plaintext' && r.nodes === x.nodes)!;
  const unsigned = (x: Measurement) =>
    m.find((r) => r.variant === 'secagg' && r.nodes === x.nodes && r.dropout === x.dropout);
  const overhead = (x: Measurement) => {
    const u = x.variant === 'secagg-signed' ? unsigned(x) : undefined;
    if (!u) return '';
    const bytes = (x.bytesToNodes + x.bytesFromNodes) / (u.bytesToNodes + u.bytesFromNodes);
    return `${((bytes - 1) * 100).toFixed(1)}% bytes, ${(x.criticalPathSeconds / u.criticalPathSeconds).toFixed(2)}x time`;
  };
  const row = (x: Measurement) => {
    const base = ref(x);
    const bytes = x.bytesToNodes + x.bytesFromNodes;
    const baseBytes = base.bytesToNodes + base.bytesFromNodes;
    return (
      `| ${x.nodes} | ${x.variant} | ${(x.dropout * 100).toFixed(0)}% | ${x.included} | ${x.phases} | ${(x.bytesFromNodes / x.nodes / 1024).toFixed(1)} | ` +
      `${(x.bytesToNodes / x.nodes / 1024).toFixed(1)} | ${(bytes / baseBytes).toFixed(2)}x | ${x.coordinatorSeconds.toFixed(3)} | ${x.meanNodeSeconds.toFixed(3)} | ` +
      `${x.criticalPathSeconds.toFixed(3)} | ${(x.criticalPathSeconds / base.criticalPathSeconds).toFixed(1)}x | ${overhead(x)} |`
    );
  };
  const env = report.machine;
  return [
    '# Secure aggregation: cost per round',
    '',
    `Seed MLP update (784-128-10, ${dim} parameters; secure aggregation adds one weight coordinate), FedAvg weighting, clip ${DEFAULT_SECAGG.clip}, ` +
      `maxWeight ${DEFAULT_SECAGG.maxWeight}, threshold t = floor(n/2) + 1 (the round engine's choice). Dropouts leave after sharing keys (their pairwise masks are rebuilt).`,
    'Bytes are the frames the round engine sends, headers included, per node; seconds are CPU seconds (user + system, process.cpuUsage) per party, ' +
      'median of the repeats. Critical path = coordinator + the slowest node of each phase (nodes run in parallel); local training ' +
      '(the same for all three) and network latency (one round trip per phase) are not included.',
    `Generated by \`${report.command}\`${report.command.includes('--repeats 1') ? ' (one repeat, to spare a loaded machine; the full run is `npm run bench:secagg`: 3 repeats, median)' : ''}.`,
    '',
    '| nodes | variant | dropout | in sum | phases | KiB up / node | KiB down / node | bytes vs plaintext | coordinator s | mean node s ' +
      '| critical path s | vs plaintext | signatures + consistency round vs secagg |',
    '| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
    ...m.map(row),
    '',
    `Environment: ${env.cpu_model}, ${env.cpu_cores} cores (${env.available_parallelism} available), ${env.platform}, Node ${env.node}; ` +
      `no training kernels involved (ChaCha20, X25519, Ed25519 from @noble in pure JavaScript). Load average (1, 5, 15 min) at start ` +
      `${report.load_average[0].join(', ')}, at end ${report.load_average[1].join(', ')}: a shared machine (CPU time, not wall time, is reported, but cache and frequency effects remain). ` +
      `Git ${report.git_commit?.slice(0, 12) ?? '?'}; finished ${report.finished_at}; ${Math.round(report.total_seconds)} s in all.`,
    '',
  ].join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      nodes: { type: 'string', default: '10,50' },
      dropout: { type: 'string', default: '0,0.1' },
      repeats: { type: 'string', default: '3' },
      'results-dir': { type: 'string', default: join(REPO, 'bench', 'results') },
      'report-only': { type: 'boolean', default: false },
    },
  });
  const dir = resolve(values['results-dir']!);
  const files = resultFiles<Report>(dir, 'secagg', values['report-only']!, markdown);
  if (!files) return;
  const list = (name: string, text: string, ok: (v: number) => boolean, what: string) =>
    text.split(',').map((t) => numberFlag(name, t, ok, what));
  const nodeCounts = list(
    'nodes',
    values.nodes!,
    (v) => Number.isInteger(v) && v >= 3 && v <= 1000,
    'whole numbers in [3, 1000], comma-separated',
  );
  const dropouts = list('dropout', values.dropout!, (v) => v >= 0 && v < 0.5, 'fractions in [0, 0.5), comma-separated');
  const repeats = numberFlag('repeats', values.repeats!, (v) => Number.isInteger(v) && v >= 1, 'a whole number >= 1');
  mkdirSync(dir, { recursive: true });
  const started = performance.now();
  const loadStart = loadavg().map((v) => Math.round(v * 100) / 100);
  const measurements: Measurement[] = [];
  // Warm-up (JIT): one small round of each variant, not recorded.
  plaintextRound(4, 99);
  secureRound('secagg', 4, 0.25, 99);
  secureRound('secagg-signed', 4, 0.25, 99);
  for (const nodes of nodeCounts) {
    for (const variant of VARIANTS) {
      for (const dropout of variant === 'plaintext' ? [0] : dropouts) {
        const runs = Array.from({ length: repeats }, (_, r) =>
          variant === 'plaintext' ? plaintextRound(nodes, r + 1) : secureRound(variant, nodes, dropout, r + 1),
        );
        const pick = (k: 'coordinatorSeconds' | 'meanNodeSeconds' | 'criticalPathSeconds') =>
          median(runs.map((x) => x[k]));
        const m = {
          ...runs[0],
          coordinatorSeconds: pick('coordinatorSeconds'),
          meanNodeSeconds: pick('meanNodeSeconds'),
          criticalPathSeconds: pick('criticalPathSeconds'),
        };
        measurements.push(m);
        process.stderr.write(
          `secagg bench: ${nodes} nodes, ${variant}, dropout ${dropout}: ${((m.bytesFromNodes + m.bytesToNodes) / 1e6).toFixed(2)} MB, ` +
            `critical path ${m.criticalPathSeconds.toFixed(2)} s (coordinator ${m.coordinatorSeconds.toFixed(2)} s)\n`,
        );
      }
    }
  }
  const command = `npm run bench:secagg -- --nodes ${nodeCounts.join(',')} --dropout ${dropouts.join(',')} --repeats ${repeats}`;
  const report = {
    command,
    measurements,
    ...provenance(1, started),
    load_average: [loadStart, loadavg().map((v) => Math.round(v * 100) / 100)],
  };
  writeAtomic(files.json, JSON.stringify(report, null, 2) + '\n');
  writeAtomic(files.md, markdown(report));
  process.stderr.write(`secagg bench: wrote ${files.json} and ${files.md}\n`);
}

await main();

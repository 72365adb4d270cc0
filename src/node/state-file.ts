/**
 * A deployed node's state directory (`edgefed node --state-dir`): one file per run, run-<id>.node-state.json, with
 * what the node keeps between rounds (SCAFFOLD's control variate, FedDyn's linear term, the FedPer / FedRep head,
 * Ditto's personal model), so a node restarted mid-run resumes with it. Written whole or not at all (temporary
 * file, fsync, rename). The file names its format version, the run id, the model's tensor names and shapes, and a
 * sha256 over the rest: an empty, corrupt, other-version or other-model file is set aside as <file>.rejected-<time>
 * with a warning that says why, and the run's state starts fresh; it is never half used.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { TensorSlot } from '../core/params.js';
import type { LocalStateKind } from '../model/trainer.js';
import { vectorFromBase64, vectorToBase64 } from '../engine/strategies/vector-state.js';
import { personalModelOf, type NodeStateSnapshot, type NodeStateStore } from './local-state.js';
import type { AgentLog } from './agent-core.js';

export const NODE_STATE_FORMAT = 'edgefed-node-state';
export const NODE_STATE_VERSION = 1;
const KINDS: readonly LocalStateKind[] = ['scaffold', 'feddyn', 'fedper', 'fedrep', 'ditto'];
const VECTORS = ['control', 'linear', 'head', 'personal'] as const;

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const shapeOf = (layout: readonly TensorSlot[]) => layout.map((s) => ({ name: s.name, shape: [...s.shape] }));

/** The file's text for `snapshot` of run `runId` (the sha256 covers every other field). */
export function encodeNodeState(runId: number, layout: readonly TensorSlot[], s: NodeStateSnapshot): string {
  const vectors: Record<string, string> = {};
  for (const key of VECTORS) if (s[key]) vectors[key] = vectorToBase64(s[key]);
  const body = {
    format: NODE_STATE_FORMAT,
    version: NODE_STATE_VERSION,
    runId,
    layout: shapeOf(layout),
    kind: s.kind,
    round: s.round,
    ...(s.headLayers !== undefined ? { headLayers: s.headLayers } : {}),
    vectors,
  };
  return JSON.stringify({ ...body, sha256: sha256(JSON.stringify(body)) });
}

/** Reads a file's text back, or throws saying what is wrong with it. */
export function decodeNodeState(text: string, runId: number, layout: readonly TensorSlot[]): NodeStateSnapshot {
  if (text.trim() === '') throw new Error('the file is empty');
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new Error('the file is not valid JSON (truncated or corrupt)');
  }
  if (parsed === null || typeof parsed !== 'object' || parsed.format !== NODE_STATE_FORMAT)
    throw new Error(`the file is not an ${NODE_STATE_FORMAT} file`);
  const { sha256: claimed, ...body } = parsed;
  if (claimed !== sha256(JSON.stringify(body))) throw new Error('its sha256 does not match its contents (corrupt)');
  if (body.version !== NODE_STATE_VERSION)
    throw new Error(`it is format version ${String(body.version)}, this node reads version ${NODE_STATE_VERSION}`);
  if (body.runId !== runId) throw new Error(`it belongs to run ${String(body.runId)}, not run ${runId}`);
  if (JSON.stringify(body.layout) !== JSON.stringify(shapeOf(layout)))
    throw new Error("it was saved for another model shape (its tensors' names or shapes differ from this run's)");
  if (!KINDS.includes(body.kind as LocalStateKind)) throw new Error(`unknown state kind '${String(body.kind)}'`);
  if (!Number.isInteger(body.round) || (body.round as number) < 0) throw new Error(`bad round '${String(body.round)}'`);
  const size = layout.reduce((a, s) => a + s.size, 0);
  const vectors = (body.vectors ?? {}) as Record<string, unknown>;
  const out: NodeStateSnapshot = { kind: body.kind as LocalStateKind, round: body.round as number };
  for (const key of VECTORS) {
    if (vectors[key] === undefined) continue;
    // The head is shorter than the model: its length is checked against the head's slots when restored.
    const bytes = typeof vectors[key] === 'string' ? Buffer.from(vectors[key], 'base64').length : -1;
    const length = key === 'head' ? bytes / 4 : size;
    if (!Number.isInteger(length) || length < 0) throw new Error(`its ${key} vector is not whole float32 values`);
    out[key] = vectorFromBase64(vectors[key], length, `node state ${key}`);
  }
  if (body.headLayers !== undefined) out.headLayers = body.headLayers as number;
  return out;
}

/** Write-then-rename with the data and the directory entry flushed: a crash leaves the old file or the new one. */
function writeDurably(dir: string, file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  const dirFd = openSync(dir, 'r');
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}

/** The personalised model a node holds for a run, built on the global weights it is served with. */
export interface PersonalModel {
  kind: LocalStateKind;
  /** The round of the update that last changed the personal part. */
  round: number;
  weights: Float32Array;
}

export class NodeStateDir {
  /** Per run: the state as last loaded or saved (null: none, or the file was set aside). */
  private readonly latest = new Map<number, NodeStateSnapshot | null>();

  constructor(
    readonly dir: string,
    private readonly log: AgentLog,
  ) {}

  fileOf(runId: number): string {
    return join(this.dir, `run-${runId}.node-state.json`);
  }

  /** The store a run's NodeHost keeps its node's state in. */
  storeFor(runId: number, layout: readonly TensorSlot[]): NodeStateStore {
    const file = this.fileOf(runId);
    return {
      load: () => this.read(runId, layout) ?? undefined,
      save: (snapshot) => {
        mkdirSync(this.dir, { recursive: true, mode: 0o700 });
        writeDurably(this.dir, file, encodeNodeState(runId, layout, snapshot));
        this.latest.set(runId, snapshot);
      },
      warn: (message) => this.log.warn({ runId, file }, `node state: ${message}`),
    };
  }

  /** Reads run `runId`'s file once (later calls answer from memory), setting a bad file aside with a warning. */
  read(runId: number, layout: readonly TensorSlot[]): NodeStateSnapshot | null {
    const known = this.latest.get(runId);
    if (known !== undefined) return known;
    const file = this.fileOf(runId);
    let snapshot: NodeStateSnapshot | null = null;
    if (existsSync(file)) {
      const text = readFileSync(file, 'utf8');
      try {
        snapshot = decodeNodeState(text, runId, layout);
        const { sha256: fileSha } = JSON.parse(text) as { sha256: string };
        this.log.info(
          { runId, file, kind: snapshot.kind, round: snapshot.round, sha256: fileSha },
          'resumed node state',
        );
      } catch (e) {
        const aside = `${file}.rejected-${new Date().toISOString().replace(/[:.]/g, '-')}`;
        renameSync(file, aside);
        this.log.warn(
          { runId, file, reason: (e as Error).message, keptAs: aside },
          `node state file ${file} not used: ${(e as Error).message}; this run's node state starts fresh ` +
            `(the file is kept as ${aside})`,
        );
      }
    }
    this.latest.set(runId, snapshot);
    return snapshot;
  }

  /** The node's personalised model for run `runId` on top of `global`; undefined without personal state. */
  personal(runId: number, layout: readonly TensorSlot[], global: Float32Array): PersonalModel | undefined {
    const s = this.read(runId, layout);
    const weights = s ? personalModelOf(s, layout, global) : undefined;
    return s && weights ? { kind: s.kind, round: s.round, weights } : undefined;
  }
}

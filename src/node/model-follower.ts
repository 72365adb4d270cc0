/**
 * Keeps the node serving the newest global model: polls the coordinator's model registry, downloads a
 * newer version in the tfjs format (model.json + weights.bin), checks its sha256 against the listing,
 * loads it, then swaps it in with one assignment, so a request sees either the old or the new version,
 * never a mix. The old version is retired once the requests using it finish.
 */
import type { Logger } from 'pino';
import type { ModelJson } from '../model/tfjs.js';
import { weightsSha256 } from '../model/hash.js';
import type { ModelVersionInfo } from '../model/version-info.js';
import { ServedModel } from '../predict/served-model.js';
import type { ModelLoader, ServingModel } from '../predict/serving-model.js';
import { signedFetch, type NodeCredentials } from './signed-fetch.js';
import type { NodeMetrics } from './node-metrics.js';
import type { StandardizeStats } from '../data/split.js';
import type { InputScaling } from '../predict/input-scaling.js';

export interface FollowerOptions {
  coordinator: string;
  creds: NodeCredentials;
  /** The run whose models to serve; default: the newest run that has a model version. */
  runId?: number;
  pollMs: number;
  log: Logger;
  metrics: NodeMetrics;
  /** How a downloaded version becomes servable (default: the float model on the engine). */
  load?: ModelLoader;
}

/** A version's own input scaling: the federation's statistics of a federated-standardised run. */
export type VersionScaling = InputScaling;

export class ModelFollower {
  current: ServingModel | null = null;
  runId: number | null = null;
  /** Scaling that came with a version (edgefed.json); kept beside the model so a swap changes both at once. */
  private readonly scalings = new WeakMap<ServingModel, VersionScaling>();
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(private readonly options: FollowerOptions) {}

  start(): void {
    const tick = async () => {
      try {
        await this.poll();
      } catch (e) {
        this.options.log.debug({ err: (e as Error).message }, 'model poll failed; retrying');
      }
      if (!this.stopped) this.timer = setTimeout(() => void tick(), this.options.pollMs);
    };
    void tick();
  }

  private async pickRun(): Promise<number | null> {
    if (this.options.runId !== undefined) return this.options.runId;
    const r = await signedFetch(this.options.coordinator, '/v1/runs', this.options.creds, undefined, 10_000);
    const { runs } = (await r.json()) as { runs: { id: number; roundsCompleted: number }[] };
    const withModels = runs.filter((x) => x.roundsCompleted > 0).map((x) => x.id);
    return withModels.length ? Math.max(...withModels) : null;
  }

  /** The federation's statistics `model` was trained on, when its run had them. */
  scalingOf(model: ServingModel): VersionScaling | undefined {
    return this.scalings.get(model);
  }

  /** A version's edgefed.json; an older coordinator without the route means no scaling of its own. */
  private async versionScaling(path: string): Promise<VersionScaling | undefined> {
    const r = await signedFetch(this.options.coordinator, path, this.options.creds);
    if (r.status === 404) return undefined;
    if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`); // retried next poll: never served unscaled
    const meta = (await r.json()) as { columns?: string[]; standardization?: StandardizeStats };
    return meta.columns && meta.standardization ? { columns: meta.columns, stats: meta.standardization } : undefined;
  }

  /** One check: loads and swaps in a newer version if the coordinator has one. */
  async poll(): Promise<void> {
    const runId = await this.pickRun();
    if (runId === null) return;
    const base = `/v1/runs/${runId}/models`;
    const { models } = (await (await signedFetch(this.options.coordinator, base, this.options.creds)).json()) as {
      models: ModelVersionInfo[];
    };
    const newest = models.at(-1);
    const cur = this.current;
    if (!newest || (cur && this.runId === runId && Number(cur.version) >= newest.version)) return;
    const jsonRes = await signedFetch(
      this.options.coordinator,
      `${base}/${newest.version}/model.json`,
      this.options.creds,
    );
    const jsonText = await jsonRes.text();
    const weightBytes = new Uint8Array(
      await (
        await signedFetch(this.options.coordinator, `${base}/${newest.version}/weights.bin`, this.options.creds)
      ).arrayBuffer(),
    );
    const scaling = await this.versionScaling(`${base}/${newest.version}/edgefed.json`);
    this.options.metrics.modelBytes.inc(jsonText.length + weightBytes.byteLength);
    // tfjs (~80 MB resident) is loaded on the first download, not with the node: a training node never needs it.
    const { ensureTfjs, specFromModelArtifacts } = await import('../model/tfjs.js');
    await ensureTfjs();
    const { spec, weights } = await specFromModelArtifacts(
      JSON.parse(jsonText) as ModelJson,
      `${base}/${newest.version}/model.json`,
      (p) => {
        if (p !== './weights.bin' && p !== 'weights.bin')
          throw new Error(`model.json names weights file ${p}; expected ./weights.bin`);
        return weightBytes;
      },
    );
    if (!weights || weightsSha256(weights) !== newest.sha256)
      throw new Error(`model version ${newest.version}: weights do not match the listed sha256`);
    const load: ModelLoader = this.options.load ?? ServedModel.load;
    let next: ServingModel;
    try {
      next = await load(newest.version, spec, weights, newest.sha256);
    } catch (e) {
      // Not a network hiccup: this version cannot be served this way (e.g. int8 of a GRU); say so loudly.
      this.options.log.warn({ version: newest.version, err: (e as Error).message }, 'cannot serve this model version');
      throw e;
    }
    if (this.stopped) return next.retire();
    if (scaling) this.scalings.set(next, scaling);
    const old = this.current;
    this.current = next; // the swap: later requests use `next`, requests in flight finish on `old`
    this.runId = runId;
    old?.retire();
    this.options.metrics.modelVersion.set(newest.version);
    this.options.metrics.modelSwitches.inc();
    this.options.log.info(
      { runId, version: newest.version, sha256: newest.sha256, precision: next.precision ?? 'float32' },
      'serving model version',
    );
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.current?.retire();
  }
}

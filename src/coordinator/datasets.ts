/**
 * The data a run may name. A run config's evalDataset is a NAME, resolved only against the datasets the
 * operator registered when starting the coordinator (`--dataset NAME=SPEC`, repeatable) and the built-ins;
 * nothing a client sends is ever opened as a path. Errors name the dataset and the registered names, never
 * a file or its contents.
 *
 * Test sets are cached per registered name (an operator-bounded set, and a byte budget besides); a run's
 * `limitTest` takes a zero-copy prefix view of the cached set, so different limits cost no memory.
 * `prepare` loads a set into the cache in a worker thread, so starting a run does not block the event loop.
 */
import { bootWorker, firstMessage, workerEntry } from '../sim/boot-worker.js';
import { loadDatasetSpec, DATASET_SPEC_FORMS, type LoadedData } from '../data/load.js';
import { featureSize, type Dataset } from '../data/types.js';
import { ByteLru } from './byte-lru.js';

export const BUILTIN_DATASETS: Readonly<Record<string, string>> = { mnist: 'mnist', 'fashion-mnist': 'fashion-mnist' };
const NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;
/** Test sets kept in memory at once (MNIST's test split is 31 MB). */
export const TEST_CACHE_BYTES = 256 * 1024 * 1024;

export class DatasetError extends Error {}

/** `--dataset NAME=SPEC`: a name for a dataset spec (mnist, idx:DIR, csv:FILE?...). */
export function parseDatasetFlag(text: string): { name: string; spec: string } {
  const eq = text.indexOf('=');
  const name = eq < 0 ? '' : text.slice(0, eq);
  const spec = eq < 0 ? '' : text.slice(eq + 1);
  if (!NAME.test(name) || spec === '') {
    throw new DatasetError(
      `--dataset '${text}': expected NAME=SPEC, NAME a letter then up to 63 letters, digits or _.- ; SPEC one of ${DATASET_SPEC_FORMS.join(' | ')}`,
    );
  }
  return { name, spec };
}

export class DatasetCatalog {
  private readonly specs: Map<string, string>;
  private readonly tests = new ByteLru<Dataset>(TEST_CACHE_BYTES);
  /** Test sets being loaded in a worker thread (prepare), by name. */
  private readonly loading = new Map<string, Promise<void>>();

  /** `workerNice`: the nice value of the thread that loads a test split (thread-priority.ts). */
  constructor(
    registered: Record<string, string> = {},
    private readonly workerNice = 0,
  ) {
    this.specs = new Map(Object.entries({ ...BUILTIN_DATASETS, ...registered }));
  }

  names(): string[] {
    return [...this.specs.keys()];
  }

  has(name: string): boolean {
    return this.specs.has(name);
  }

  /** Registers a dataset the operator named (the CLI's --dataset, or a --config file's evalDataset). */
  register(name: string, spec: string): void {
    this.specs.set(name, spec);
  }

  /** Why `name` cannot be a run's evalDataset, or null when it can. */
  problem(name: string): string | null {
    if (this.specs.has(name)) return null;
    return (
      `evalDataset '${name.slice(0, 64)}' is not a registered dataset; registered: ${this.names().join(', ')} ` +
      '(the operator registers datasets with `edgefed coordinator --dataset NAME=SPEC`)'
    );
  }

  /** Bytes of test data held in the cache. */
  get cachedBytes(): number {
    return this.tests.bytes;
  }

  /**
   * Loads the named dataset's test split into the cache in a worker thread, so the testSet call that follows
   * finds it there instead of decoding it on the event loop. Never rejects: a set that fails to load here is
   * loaded (and its error reported) by testSet. CSV specs (which may be scaled raw) load on demand as before.
   */
  prepare(name: string): Promise<void> {
    const spec = this.specs.get(name);
    if (spec === undefined || spec.startsWith('csv:') || this.tests.get(name)) return Promise.resolve();
    let pending = this.loading.get(name);
    if (!pending) {
      pending = loadTestInWorker(spec, this.workerNice)
        .then((test) => {
          if (test && !this.tests.get(name)) this.tests.set(name, test, test.x.byteLength + test.y.byteLength);
        })
        .finally(() => this.loading.delete(name));
      this.loading.set(name, pending);
    }
    return pending;
  }

  /** The test split of the named dataset, its first `limit` examples when given (a view, not a copy). */
  testSet(name: string, limit?: number): Dataset {
    const problem = this.problem(name);
    if (problem) throw new DatasetError(problem);
    let full = this.tests.get(name);
    if (!full) {
      try {
        full = loadDatasetSpec(this.specs.get(name)!).test;
      } catch (e) {
        throw new DatasetError(`dataset '${name}' could not be loaded: ${(e as Error).message}`);
      }
      this.tests.set(name, full, full.x.byteLength + full.y.byteLength);
    }
    return limit && limit < full.n ? prefix(full, limit) : full;
  }

  /** Why a run with `standardize: 'federated'` cannot use its evalDataset, or null when it can (or is not one). */
  federatedStandardizeProblem(config: { standardize?: string; evalDataset: string }): string | null {
    if (config.standardize !== 'federated') return null;
    try {
      this.rawTestSet(config.evalDataset);
      return null;
    } catch (e) {
      return (e as Error).message;
    }
  }

  /**
   * The test split of a registered CSV dataset of rows, unscaled (a federated-standardised run scales it with
   * the federation's statistics). Throws a DatasetError saying why when the dataset is not one.
   */
  rawTestSet(name: string, limit?: number): Dataset & { columns: string[] } {
    const problem = this.problem(name);
    if (problem) throw new DatasetError(problem);
    const key = `${name}\u0000raw`;
    let full = this.tests.get(key);
    if (!full) {
      const spec = this.specs.get(name)!;
      let loaded: LoadedData | undefined;
      try {
        loaded = spec.startsWith('csv:') ? loadDatasetSpec(spec, { standardize: false }) : undefined;
      } catch (e) {
        throw new DatasetError(`dataset '${name}' could not be loaded: ${(e as Error).message}`);
      }
      if (!loaded?.test.columns || loaded.standardization)
        throw new DatasetError(
          `standardize 'federated' scales CSV feature columns, and evalDataset '${name}' is not a CSV dataset of ` +
            "rows (csv:FILE without window=); use standardize 'node' or register a CSV dataset",
        );
      full = loaded.test;
      this.tests.set(key, full, full.x.byteLength + full.y.byteLength);
    }
    const view = limit && limit < full.n ? prefix(full, limit) : full;
    return view as Dataset & { columns: string[] };
  }
}

/** A spec's test split loaded in a worker thread (dataset-worker.ts); null when it could not be loaded there. */
async function loadTestInWorker(spec: string, nice: number): Promise<Dataset | null> {
  const worker = bootWorker(workerEntry('dataset-worker', import.meta.url), { spec, nice });
  try {
    const m = await firstMessage<{ ok: true; test: Dataset } | { ok: false; message: string }>(
      worker,
      'dataset worker',
    );
    return m.ok ? m.test : null;
  } catch {
    return null;
  } finally {
    void worker.terminate();
  }
}

function prefix(d: Dataset, n: number): Dataset {
  const extra = d.extra ? Object.fromEntries(Object.entries(d.extra).map(([k, v]) => [k, v.slice(0, n)])) : undefined;
  return { ...d, n, x: d.x.subarray(0, n * featureSize(d)), y: d.y.subarray(0, n), extra };
}

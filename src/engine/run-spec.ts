/**
 * The run spec: one zod schema for everything a run is (model, data, partition, strategy, local training,
 * compression, privacy, heterogeneity, mode). Fields fall in three groups: those every run has, those only a
 * simulation has (its data, virtual nodes, attacks, device profiles) and those only a deployed run has (its
 * scheduling). The simulation options (sim/options.ts: the CLI, `runSimulation`) and the run config
 * (coordinator/config.ts: `POST /v1/runs`, `--config` files, gateways) are two views of this schema: each picks
 * its groups, keeps the field names users already write, and differs only in the few defaults and forms listed
 * in its view below. Which features combine is checked by engine/run-rules.ts on either view.
 */
import { z } from 'zod';
import { compressionForms, parseCompression } from '../core/compress-update.js';
import { parsePartitionSpec } from '../core/partition.js';
import { ATTACK_KINDS } from '../core/robust.js';
import { parseLocalDp } from '../core/local-dp.js';
import { BUILTIN_MODELS } from '../model/spec.js';
import { parseProfileSpec } from '../sim/profiles.js';
import { QUEUE_NAME_PATTERN, redisConnection } from '../sim/queue-url.js';
import { DP_NOISE_SOURCES } from './dp-noise.js';
import { DEFAULT_SECAGG, type SecureAggregationOptions } from './secure-round.js';
import { parseStrategy, strategyHelp } from './strategies/registry.js';

/** A text field checked by its parser; the parser's message becomes the field's issue. */
export function specText(parse: (text: string) => unknown, fallback: string, description: string) {
  return z
    .string()
    .default(fallback)
    .superRefine((text, ctx) => {
      try {
        parse(text);
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: (e as Error).message });
      }
    })
    .describe(description);
}

const fraction01 = z.number().gt(0).lte(1);
const rounds = z.number().int().min(1).max(100000);
const dayMs = 24 * 3600 * 1000;

/** Secure aggregation's settings as a run config writes them (`"secagg": {}` turns it on with the defaults). */
const secureAggregationSettings = z
  .object({
    clip: z
      .number()
      .gt(0)
      .lte(1e6)
      .default(DEFAULT_SECAGG.clip)
      .describe('each update is clipped to this L2 norm before it is encoded to integers'),
    maxWeight: z
      .number()
      .int()
      .min(1)
      .max(2 ** 24)
      .default(DEFAULT_SECAGG.maxWeight)
      .describe("the largest example count a node's weight may claim (bounds the integer field)"),
  })
  .strict();

/** CSV feature scaling: pooled statistics (central), each node its own (node), or the federation's (federated). */
export const STANDARDIZE_MODES = ['central', 'node', 'federated'] as const;
export type StandardizeMode = (typeof STANDARDIZE_MODES)[number];
/** A deployed run cannot scale centrally: no one holds the pooled rows. */
export const DEPLOYED_STANDARDIZE_MODES = ['node', 'federated'] as const;

/** What every run has, simulated or deployed. */
const everyRun = {
  model: z.string().min(1).default('mlp'),
  rounds: rounds.default(10).describe('rounds to run (fusions in async mode)'),
  fraction: fraction01.default(1).describe('share of eligible nodes asked to train each round'),
  minNodes: z.number().int().min(1).optional(),
  strategy: specText(parseStrategy, 'fedavg', `how updates are fused: ${strategyHelp()}`),
  localEpochs: z.number().int().min(1).max(1000).default(1).describe('local epochs per round (E)'),
  batchSize: z.number().int().min(1).max(65536).default(32).describe('local batch size (B)'),
  optimizer: z.enum(['sgd', 'adam', 'momentum']).optional().describe("local optimizer (default: the model's own)"),
  lr: z.number().gt(0).lt(100).optional().describe('local learning rate'),
  seed: z
    .number()
    .int()
    .min(0)
    .max(2 ** 32 - 1)
    .default(1)
    .describe('seed for every random choice'),
  targetAccuracy: z.number().gt(0).lte(1).optional().describe('stop when central test accuracy reaches this'),
  evalFraction: z.number().min(0).lte(1).default(0).describe('fraction of nodes asked to evaluate each round'),
  limitTest: z.number().int().min(1).optional().describe('use only the first N test examples'),
  compression: specText(
    parseCompression,
    'none',
    `how nodes compress their updates: ${compressionForms()}, ` +
      'then optional ,ef=on|off ,delta=on|off ,rounding=nearest|stochastic',
  ),
  /** Synchronous rounds: ask (1 + overSelect) times the nodes a round needs and fuse the first that answer. */
  overSelect: z.number().min(0).max(10).optional(),
  /** Secure aggregation (secure-round.ts): the coordinator sees only the sum of masked updates. */
  secagg: secureAggregationSettings
    .optional()
    .describe('secure aggregation: the coordinator sees only the sum of masked updates ({} for the defaults)'),
  /** 'async': FedBuff with bufferSize (K) updates per fusion, concurrency nodes training, serverLr. */
  mode: z
    .enum(['sync', 'async'])
    .default('sync')
    .describe('sync: rounds; async: FedBuff, a fusion every bufferSize updates, stale ones down-weighted'),
  bufferSize: z.number().int().min(1).optional().describe('async: updates per fusion (K)'),
  concurrency: z.number().int().min(1).optional().describe('async: nodes training at once'),
  serverLr: z.number().gt(0).lte(100).optional().describe("async: the server's step on the buffered mean update"),
  /**
   * CSV feature scaling. Simulation: absent = central (sim/standardize-shards.ts). Deployed: node or federated
   * only (no one holds the pooled rows); federated runs one analytics pass before round 1.
   */
  standardize: z
    .enum(STANDARDIZE_MODES)
    .optional()
    .describe("CSV feature scaling: each node its own statistics (node) or the federation's (federated)"),
};

/** What only a simulation has: the data and its partition, the virtual nodes, attacks and device profiles. */
const simulationOnly = {
  dataset: z.string().min(1).default('mnist'),
  nodes: z.number().int().min(1).max(100000).default(10),
  partition: specText(
    parsePartitionSpec,
    'iid',
    'iid | shards:K | dirichlet:ALPHA[:MIN] | quantity:ALPHA[:MIN] | feature:NAME | natural:COLUMN',
  ),
  validationFraction: z.number().min(0).lt(1).default(0.2),
  workers: z.number().int().min(1).max(64).optional(),
  trainer: z.enum(['auto', 'engine', 'tfjs']).default('auto'),
  /** Limit training examples (first N of the train split) for quick runs and tests. */
  limitTrain: z.number().int().min(1).optional(),
  /** Attack simulation: what the Byzantine nodes do (robust.ts defines each; 'none' = no attack). */
  attack: z.enum(['none', ...ATTACK_KINDS]).optional(),
  /** Fraction of the nodes that are Byzantine: floor(malicious * nodes), picked with the seed's 'malicious' stream. */
  malicious: z.number().gt(0).lt(1).optional(),
  /** Attack strength s (sign-flip, scale) or sigma (gaussian); default DEFAULT_ATTACK_SCALE. */
  attackScale: z.number().gt(0).lte(1e6).optional(),
  /**
   * dpfedavg's noise and node sampling: 'seeded' (default here: the run repeats bit for bit, and anyone with the
   * seed can regenerate the noise) or 'csprng' (as in deployment: nobody can). Recorded in every DP round.
   */
  dpNoise: z.enum(DP_NOISE_SOURCES).default('seeded'),
  /** Local DP: every node clips and noises its own update before it leaves (core/local-dp.ts), noise from dpNoise. */
  localDp: z
    .string()
    .refine((text) => {
      parseLocalDp(text);
      return true;
    })
    .optional(),
  /** Fault injection with secure aggregation: fraction of each round's nodes that drop after sharing keys. */
  secaggDropout: z.number().min(0).lt(1).optional(),
  /** Secure aggregation's settings as flags: the per-coordinate clip and the largest weight of one update. */
  secaggClip: z.number().gt(0).lte(1e6).optional(),
  secaggMaxWeight: z
    .number()
    .int()
    .min(1)
    .max(2 ** 24)
    .optional(),
  /** Device profiles (uniform | slow20 | heavytail | PATH.json): turns on the virtual clock. */
  profile: z
    .string()
    .superRefine((text, ctx) => {
      try {
        parseProfileSpec(text);
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: (e as Error).message });
      }
    })
    .optional(),
  /** Synchronous rounds close after this many simulated seconds. */
  deadline: z.number().gt(0).optional(),
  /** Run the virtual nodes on `edgefed sim-worker` processes through a BullMQ queue at this redis:// URL. */
  queue: z
    .string()
    .refine((url) => {
      redisConnection(url);
      return true;
    })
    .optional(),
  /** The BullMQ queue name (default edgefed-sim). */
  queueName: z.string().regex(QUEUE_NAME_PATTERN, 'letters, digits, _ . - (at most 64)').optional(),
};

/** What only a deployed run has: its name, the coordinator's evaluation data, and scheduling on real nodes. */
const deploymentOnly = {
  name: z.string().min(1).max(128).default('run').describe('a name for people (dashboard, listings)'),
  /** Central evaluation data held by the coordinator (its test split is used). */
  evalDataset: z
    .string()
    .min(1)
    .default('mnist')
    .describe(
      'central evaluation data: mnist or a dataset the coordinator registered (--dataset NAME=SPEC); never a path',
    ),
  /** Scheduling: a round's deadline, which nodes qualify, work sized to speed. */
  roundTimeoutMs: z
    .number()
    .int()
    .min(100)
    .max(dayMs)
    .default(10 * 60 * 1000)
    .describe("a round's deadline in ms: later replies are recorded as late, never fused"),
  selection: z
    .object({
      tags: z.record(z.string(), z.string()).default({}).describe('only nodes whose tags include all of these'),
      minCores: z.number().int().min(0).optional().describe('only nodes reporting at least this many cores'),
      minMemoryMb: z.number().min(0).optional().describe('only nodes reporting at least this much memory (MB)'),
      minSamplesPerSecond: z.number().min(0).optional().describe('only nodes at least this fast (measured)'),
    })
    .strict()
    .default({ tags: {} })
    .describe('which nodes may be asked: by the tags and resources they declared when they joined'),
  /** With a strategy that allows sized work (fednova, fedprox): cap each node's local steps to this many seconds. */
  workSeconds: z
    .number()
    .gt(0)
    .max(24 * 3600)
    .optional()
    .describe("fednova, fedprox: cap each node's local steps to this many seconds of its measured speed"),
  /** How long a round waits for minNodes eligible nodes before starting anyway (then it is skipped); a
   * coordinator shutting down ends the wait at once. Every duration here is bounded by 24 hours. */
  waitForNodesMs: z
    .number()
    .int()
    .min(0)
    .max(dayMs)
    .default(60_000)
    .describe('how long a round waits for minNodes eligible nodes (ms)'),
};

/** The one run spec: every field a run can have. Parse a view (below) to get a context's defaults and rules. */
export const RunSpecSchema = z.object({ ...everyRun, ...simulationOnly, ...deploymentOnly }).strict();
export type RunSpecField = keyof typeof RunSpecSchema.shape;

/** A view: the named fields of the run spec in this order (as users see them), with the view's own variants. */
function viewOf<const K extends RunSpecField, const V extends Partial<Record<K, z.ZodType>>>(
  keys: readonly K[],
  variants: V,
) {
  const shape = Object.fromEntries(
    keys.map((key) => [key, (variants as Partial<Record<K, z.ZodType>>)[key] ?? RunSpecSchema.shape[key]]),
  );
  return z.object(shape as Omit<Pick<typeof RunSpecSchema.shape, K>, keyof V> & V).strict();
}

/** Fields both views list in the same order. */
const FUSION_AND_TRAINING = [
  'strategy',
  'localEpochs',
  'batchSize',
  'optimizer',
  'lr',
  'seed',
  'targetAccuracy',
  'evalFraction',
  'limitTest',
  'compression',
] as const;
const FEDBUFF = ['mode', 'bufferSize', 'concurrency', 'serverLr'] as const;

/**
 * The simulation's view (`edgefed simulate` flags, `runSimulation`): every field but the deployment-only ones.
 * Its variants: 20 rounds by default, and secure aggregation as a switch (`--secagg`) whose settings are the
 * flat secaggClip and secaggMaxWeight flags.
 */
export const simulationView = viewOf(
  [
    'dataset',
    'model',
    'nodes',
    'fraction',
    'minNodes',
    'rounds',
    'partition',
    ...FUSION_AND_TRAINING,
    'validationFraction',
    'standardize',
    'workers',
    'trainer',
    'limitTrain',
    'attack',
    'malicious',
    'attackScale',
    'dpNoise',
    'localDp',
    'secagg',
    'secaggDropout',
    'secaggClip',
    'secaggMaxWeight',
    'profile',
    'deadline',
    'overSelect',
    ...FEDBUFF,
    'queue',
    'queueName',
  ],
  { rounds: rounds.default(20), secagg: z.boolean().default(false) },
);

/**
 * The deployed run's view (`POST /v1/runs` body, `--config` files, gateways): every field but the
 * simulation-only ones. Its variants: only the built-in models (nodes build them by name), a round needs one
 * node and asks no extra nodes unless told.
 */
export const deploymentView = viewOf(
  [
    'name',
    'evalDataset',
    'standardize',
    'model',
    'rounds',
    ...FUSION_AND_TRAINING,
    'fraction',
    'minNodes',
    'roundTimeoutMs',
    'overSelect',
    'selection',
    'workSeconds',
    'waitForNodesMs',
    'secagg',
    ...FEDBUFF,
  ],
  {
    model: z.enum(BUILTIN_MODELS).default('mlp').describe('the model every node trains'),
    // Per-node statistics stay the default: a federated pass needs every selected node to answer before round 1.
    standardize: z
      .enum(DEPLOYED_STANDARDIZE_MODES)
      .default('node')
      .describe("CSV nodes' feature scaling: each node's own statistics (node) or the federation's (federated)"),
    minNodes: z.number().int().min(1).default(1).describe('nodes a round needs before it starts'),
    overSelect: z
      .number()
      .min(0)
      .max(10)
      .default(0)
      .describe('ask (1 + overSelect) times the nodes needed and fuse the first that answer'),
  },
);

/** The secure-aggregation fields of either view: the run config's object, or the simulation's switch and flags. */
export interface SecureAggregationFields {
  secagg?: boolean | Partial<SecureAggregationOptions>;
  secaggClip?: number;
  secaggMaxWeight?: number;
}

/** Secure aggregation's settings when the run asks for it, defaults filled in; undefined when it does not. */
export function secureAggregationOf(fields: SecureAggregationFields): SecureAggregationOptions | undefined {
  if (!fields.secagg) return undefined;
  const given = fields.secagg === true ? {} : fields.secagg;
  return {
    clip: given.clip ?? fields.secaggClip ?? DEFAULT_SECAGG.clip,
    maxWeight: given.maxWeight ?? fields.secaggMaxWeight ?? DEFAULT_SECAGG.maxWeight,
  };
}

/** How an error names a field: `--local-epochs` for the command line, `localEpochs` in a run config. */
export type FieldName = (path: readonly PropertyKey[]) => string;

export const flagName: FieldName = (path) =>
  `--${path
    .map(String)
    .join('.')
    .replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
export const configName: FieldName = (path) => path.map(String).join('.');

/** Every issue of a failed parse on one line, each with its field: `field: problem; other: problem`. */
export function describeIssues(error: z.ZodError, name: FieldName, where: string): string {
  return error.issues
    .flatMap((issue) => {
      if (issue.code === 'unrecognized_keys') {
        return issue.keys.map((key) => `${name([...issue.path, key])}: unknown field in ${where}`);
      }
      return [`${issue.path.length ? name(issue.path) : where}: ${issue.message}`];
    })
    .join('; ');
}

/** The options of a simulated run, validated with zod so the CLI, configs and tests share one set of rules. */
import { z } from 'zod';
import { fedBuffFields } from '../engine/async-options.js';
import { parsePartitionSpec } from '../core/partition.js';
import { describeIssues, flagName, runSpecFields, specText } from '../engine/run-spec.js';
import { ATTACK_KINDS } from '../core/robust.js';
import { FLAG_WORDING, runIssues } from '../engine/run-rules.js';
import { capabilitiesOf, parseStrategy } from '../engine/strategies/registry.js';
import { DP_NOISE_SOURCES } from '../engine/dp-noise.js';
import { parseLocalDp } from '../core/local-dp.js';
import { parseCompression } from '../core/compress-update.js';
import { parseProfileSpec } from './profiles.js';
import { simRoundSize } from './heterogeneity-options.js';
import { STANDARDIZE_MODES } from './standardize-shards.js';
import { QUEUE_NAME_PATTERN, redisConnection } from './queue-url.js';

const fraction01 = z.number().gt(0).lte(1);

export const SimulationOptionsSchema = z
  .object({
    dataset: z.string().min(1).default('mnist'),
    model: z.string().min(1).default('mlp'),
    nodes: z.number().int().min(1).max(100000).default(10),
    fraction: fraction01.default(1),
    minNodes: z.number().int().min(1).optional(),
    rounds: z.number().int().min(1).max(100000).default(20),
    partition: specText(
      parsePartitionSpec,
      'iid',
      'iid | shards:K | dirichlet:ALPHA[:MIN] | quantity:ALPHA[:MIN] | feature:NAME | natural:COLUMN',
    ),
    /** Strategy, local training, seed, target, evaluation, compression: the fields every run has. */
    ...runSpecFields,
    validationFraction: z.number().min(0).lt(1).default(0.2),
    /** CSV feature scaling: pooled (central, the default here), each node its own (node), or federated statistics. */
    standardize: z.enum(STANDARDIZE_MODES).optional(),
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
      .refine((s) => {
        parseLocalDp(s);
        return true;
      })
      .optional(),
    /** Secure aggregation (secure-round.ts): the coordinator sees only the masked sum. */
    secagg: z.boolean().default(false),
    /** Fault injection: fraction of each round's nodes that drop after sharing keys (seeded choice). */
    secaggDropout: z.number().min(0).lt(1).optional(),
    /** Per-coordinate clip of a node's update before fixed-point encoding. */
    secaggClip: z.number().gt(0).lte(1e6).optional(),
    /** Largest numExamples one node may weight its update by. */
    secaggMaxWeight: z
      .number()
      .int()
      .min(1)
      .max(2 ** 24)
      .optional(),
    /** Device profiles (uniform | slow20 | heavytail | PATH.json): turns on the virtual clock. */
    profile: z
      .string()
      .superRefine((s, ctx) => {
        try {
          parseProfileSpec(s);
        } catch (e) {
          ctx.addIssue({ code: 'custom', message: (e as Error).message });
        }
      })
      .optional(),
    /** Synchronous rounds: a deadline in simulated seconds, and over-selection (ask k(1+x), keep the first k). */
    deadline: z.number().gt(0).optional(),
    overSelect: z.number().min(0).max(10).optional(),
    /** mode 'async': FedBuff (rounds = fusions); rules in heterogeneity-options.ts. */
    ...fedBuffFields,
    /** Run the virtual nodes on `edgefed sim-worker` processes through a BullMQ queue at this redis:// URL. */
    queue: z
      .string()
      .refine((s) => {
        redisConnection(s);
        return true;
      })
      .optional(),
    /** The BullMQ queue name (default edgefed-sim). */
    queueName: z.string().regex(QUEUE_NAME_PATTERN, 'letters, digits, _ . - (at most 64)').optional(),
  })
  .strict()
  .superRefine((o, ctx) => {
    for (const issue of runIssues(o, FLAG_WORDING, simRoundSize(o), o.nodes))
      ctx.addIssue({ code: 'custom', ...issue });
    if (o.queue !== undefined && compressionKeepsState(o.compression)) {
      ctx.addIssue({
        code: 'custom',
        path: ['compression'],
        message:
          "error feedback keeps each node's residual in the process that serves it, and with --queue any worker may take a node: add ,ef=off",
      });
    }
    if (o.localDp !== undefined && sendsGradients(o.strategy)) {
      ctx.addIssue({
        code: 'custom',
        path: ['localDp'],
        message: 'local DP noises model updates; fedsgd sends gradients: use a FedAvg-family strategy',
      });
    }
    const kept = o.queue !== undefined ? nodeStateOf(o.strategy) : undefined;
    if (kept)
      ctx.addIssue({
        code: 'custom',
        path: ['queue'],
        message: `strategy '${o.strategy}' keeps state on each node ('${kept}') in the process that serves it, and with --queue any worker may take a node: use worker threads`,
      });
    const attacking = o.attack !== undefined && o.attack !== 'none';
    if (attacking && o.malicious === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['malicious'],
        message: `needed with --attack ${o.attack}: the fraction of nodes that attack, e.g. --malicious 0.2`,
      });
    } else if (!attacking && o.malicious !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['attack'],
        message: `needed with --malicious: one of ${ATTACK_KINDS.join(', ')}`,
      });
    } else if (attacking && o.malicious !== undefined && maliciousCount(o.malicious, o.nodes ?? 10) < 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['malicious'],
        message: `${o.malicious} of ${o.nodes ?? 10} nodes is less than one node`,
      });
    }
    for (const key of ['secaggDropout', 'secaggClip', 'secaggMaxWeight'] as const) {
      if (o[key] !== undefined && !o.secagg)
        ctx.addIssue({ code: 'custom', path: [key], message: 'applies with --secagg only' });
    }
    // Queue workers take any job, so a node's secure session would not survive between its requests.
    if (o.secagg && o.queue !== undefined)
      ctx.addIssue({ code: 'custom', path: ['secagg'], message: 'runs on worker threads only, not with --queue' });
    // The secure round closes on real replies, not by simulated finish time.
    if (o.secagg && o.profile !== undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['secagg'],
        message: 'works with synchronous rounds only, not with --profile (virtual clock)',
      });
    if (o.attackScale !== undefined && (!attacking || o.attack === 'label-flip')) {
      ctx.addIssue({
        code: 'custom',
        path: ['attackScale'],
        message: 'applies to --attack sign-flip, gaussian and scale only',
      });
    }
  });

function sendsGradients(strategy: string): boolean {
  try {
    return capabilitiesOf(parseStrategy(strategy)).updateMode === 'gradient';
  } catch {
    return false; // reported by the field's own check
  }
}

function nodeStateOf(text: string | undefined): string | undefined {
  try {
    return parseStrategy(text ?? 'fedavg').localState;
  } catch {
    return undefined; // reported by the field's own check
  }
}

function compressionKeepsState(text: string | undefined): boolean {
  try {
    return parseCompression(text ?? 'none').ef;
  } catch {
    return false; // reported by the field's own check
  }
}

/** How many of `nodes` nodes a --malicious fraction makes Byzantine: floor(fraction * nodes) (at most that fraction). */
export function maliciousCount(fraction: number, nodes: number): number {
  return Math.floor(fraction * nodes + 1e-9);
}

export type SimulationOptions = z.input<typeof SimulationOptionsSchema>;
export type ResolvedOptions = z.output<typeof SimulationOptionsSchema>;

/** Validates options; bad ones throw an Error with one line naming each option and its problem. */
export function resolveOptions(input: SimulationOptions): ResolvedOptions {
  const r = SimulationOptionsSchema.safeParse(input);
  if (r.success) return r.data;
  throw new Error(describeIssues(r.error, flagName, 'options'));
}

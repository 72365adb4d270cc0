/**
 * `edgefed analytics`: federated statistics over a simulated federation's nodes (the same data spec and
 * partition as `simulate`): each node summarises its own rows and only the sketches are merged.
 */
import { Option, type Command } from 'commander';
import { intArg, UsageError } from './args.js';
import { ANALYTICS_QUERIES, DEFAULT_SECURE_CLIP, parseAnalyticsQuery } from '../engine/analytics-query.js';
import { simulateAnalytics } from '../sim/analytics.js';
import type { AnalyticsResult } from '../engine/analytics-round.js';
import { parsePartitionSpec } from '../core/partition.js';
import { DATASET_SPEC_FORMS } from '../data/load.js';

interface AnalyticsFlags {
  dataset: string;
  partition: string;
  nodes: number;
  seed: number;
  query: string;
  features?: string;
  bins?: string;
  quantiles?: string;
  ranges?: string;
  dp?: string;
  dpDelta?: string;
  dpSource: 'seeded' | 'csprng';
  secagg?: boolean;
  clip?: string;
  json?: boolean;
}

const fmt = (v: number) => (Number.isInteger(v) ? String(v) : v.toPrecision(6));

/** The result as lines for a terminal: one block per query. */
export function describeAnalytics(result: AnalyticsResult): string {
  const name = (k: number) => result.columns?.[k] ?? `feature ${result.features[k]}`;
  const lines = [
    `${result.count} rows on ${result.nodes.answered.length} of ${result.nodes.asked.length} nodes, ${result.rounds} analytics round(s), ` +
      `${result.bytes.received} bytes received`,
  ];
  for (const f of result.nodes.failed) lines.push(`node ${f.nodeId} failed: ${f.message}`);
  if (result.stats) {
    const s = result.stats;
    lines.push(s.min && s.max ? 'feature: mean, std, min, max' : 'feature: mean, std');
    result.features.forEach((_, k) => {
      const values = s.min && s.max ? [s.mean[k], s.std[k], s.min[k], s.max[k]] : [s.mean[k], s.std[k]];
      lines.push(`  ${name(k)}: ${values.map(fmt).join(', ')}`);
    });
  }
  if (result.secure) {
    const clipped = (result.secure.clipped ?? []).reduce((a, b) => a + b, 0);
    lines.push(
      `secure aggregation: the sum of ${result.secure.nodes.length} nodes' statistics only ` +
        `(threshold ${result.secure.threshold}, ${result.secure.fractionBits} fraction bits)` +
        (result.secure.clipped ? `; ${clipped} values clipped to the declared range` : ''),
    );
  }
  if (result.quantiles) {
    lines.push(`quantiles ${result.quantiles.q.join(', ')} (each within one bin width of the exact value):`);
    result.features.forEach((_, k) =>
      lines.push(
        `  ${name(k)}: ${result.quantiles!.values[k].map(fmt).join(', ')} (+-${fmt(result.quantiles!.maxError[k])})`,
      ),
    );
  }
  if (result.histogram) {
    lines.push(`histograms (${result.histogram.bins} bins):`);
    result.features.forEach((_, k) =>
      lines.push(
        `  ${name(k)} [${fmt(result.histogram!.lo[k])}, ${fmt(result.histogram!.hi[k])}]: ${result.histogram!.counts[k].join(' ')}`,
      ),
    );
  }
  if (result.labels) lines.push(`label counts: ${result.labels.map((c, i) => `${i}: ${fmt(c)}`).join(', ')}`);
  if (result.dp)
    lines.push(
      `DP: counts noised (noise ${result.dp.noise}${result.dp.minNodes ? `, shared by at least ${result.dp.minNodes} nodes` : ''}), ` +
        `epsilon ${result.dp.epsilon.toFixed(3)} at delta ${result.dp.delta}`,
    );
  return lines.join('\n') + '\n';
}

async function analytics(flags: AnalyticsFlags): Promise<void> {
  let query;
  try {
    parsePartitionSpec(flags.partition);
    query = parseAnalyticsQuery({
      query: flags.query,
      features: flags.features,
      bins: flags.bins,
      quantiles: flags.quantiles,
      ranges: flags.ranges,
      dpNoise: flags.dp,
      dpDelta: flags.dpDelta,
      ...(flags.secagg ? { secagg: true } : {}),
      clip: flags.clip,
    });
  } catch (e) {
    throw new UsageError(
      (e as Error).message.replace(/(^|; )([a-z][a-zA-Z]*):/g, (_, sep, f) => `${sep}--${flag(f)}:`),
    );
  }
  let result: AnalyticsResult;
  try {
    result = await simulateAnalytics({
      dataset: flags.dataset,
      partition: flags.partition,
      nodes: flags.nodes,
      seed: flags.seed,
      query,
      dpNoise: flags.dpSource,
    });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  process.stdout.write(flags.json ? JSON.stringify(result) + '\n' : describeAnalytics(result));
}

/** A query field as its flag: dpNoise -> dp, dpDelta -> dp-delta. */
function flag(field: string): string {
  if (field === 'dpNoise') return 'dp';
  return field.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

export function addAnalyticsCommand(program: Command): void {
  program
    .command('analytics')
    .description("federated statistics over nodes' data without moving it: stats, histograms, quantiles, label counts")
    .option('--dataset <spec>', `${DATASET_SPEC_FORMS.join(' | ')} (as simulate)`, 'mnist')
    .option('--partition <spec>', 'how rows are split over nodes, as simulate (e.g. natural:machine_id)', 'iid')
    .option('--nodes <n>', 'number of nodes', intArg(1, 100000), 10)
    .option('--seed <n>', 'seed of the partition (and of seeded DP noise)', intArg(0, 2 ** 32 - 1), 1)
    .option('--query <list>', `comma-separated: ${ANALYTICS_QUERIES.join(', ')}`, 'stats')
    .option('--features <list>', 'feature indices (0-based), comma-separated (default: all)')
    .option('--bins <n>', 'histogram bins per feature (default 64)')
    .option('--quantiles <list>', 'quantiles in [0, 1] (default 0.01,0.1,0.25,0.5,0.75,0.9,0.99)')
    .option('--ranges <list>', 'histogram ranges LO:HI, one for all features or one per --features entry')
    .option('--dp <z>', 'DP: discrete Gaussian noise on the released counts, stddev z x sensitivity')
    .option('--dp-delta <d>', 'DP delta for the reported epsilon (default 1e-5)')
    .addOption(
      new Option('--dp-source <source>', 'DP noise: seeded (repeatable) or csprng (as deployed)')
        .choices(['seeded', 'csprng'])
        .default('seeded'),
    )
    .option('--secagg', "secure aggregation: only the sum of the nodes' additive statistics is learnt (no min/max)")
    .option(
      '--clip <c>',
      `with --secagg and no --ranges: values are clipped to [-c, c] (default ${DEFAULT_SECURE_CLIP})`,
    )
    .option('--json', 'print the result as one JSON object')
    .addHelpText(
      'after',
      `
Examples:
  edgefed analytics --dataset 'csv:examples/industrial-fault/synthetic-pump-sensors.csv?label=fault&keep=machine_id' \\
    --nodes 8 --partition natural:machine_id --query stats,quantiles,labels
  edgefed analytics --nodes 10 --partition dirichlet:0.5 --query labels --dp 2 --json
  edgefed analytics --nodes 10 --query moments,labels --ranges 0:1 --secagg`,
    )
    .action(analytics);
}

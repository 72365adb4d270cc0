#!/usr/bin/env node
/**
 * The edgefed command line. Bad flags and bad files print one line `edgefed: ...` and exit with code 2
 * before anything is written; --json prints one JSON object on stdout at the end; progress goes to stderr.
 */
import { Command, Option } from 'commander';
import { resolve } from 'node:path';
import { floatArg, intArg, UsageError } from './args.js';
import { runSimulation } from '../sim/simulate.js';
import { resolveOptions, type SimulationOptions } from '../sim/options.js';
import { checkOutDir, summarize, writeRunOutputs } from './report.js';
import { addPredictCommand } from './predict-cmd.js';
import { progressReporter } from './progress.js';
import { newProgram, runProgram } from './program.js';
import { addDeployCommands } from './deploy-cmds.js';
import { addUpCommand } from './up-cmd.js';
import { addOpenCommand } from './open-cmd.js';
import { addGatewayCommand } from './gateway-cmd.js';
import { addQueueCommands } from './queue-cmds.js';
import { addSchemaCommand } from './schema-cmd.js';
import { addExportCommand } from './export-cmd.js';
import { addAnalyticsCommand } from './analytics-cmd.js';
import { addQuantizeCommand } from './quantize-cmd.js';
import { addDoctorCommand } from './doctor-cmd.js';
import { ATTACK_KINDS, DEFAULT_ATTACK_SCALE } from '../core/robust.js';
import { DEFAULT_SECAGG } from '../engine/secure-round.js';
import { strategyHelp } from '../engine/strategies/registry.js';
import { compressionForms } from '../core/compress-update.js';
import { DATASET_SPEC_FORMS } from '../data/load.js';
import { BUILTIN_MODELS } from '../model/spec.js';

const program = newProgram();

/**
 * The simulate flags: the simulation options (engine/run-spec.ts) under their flag names (--local-epochs is
 * localEpochs; test/schema-cli.test.ts checks every option has its flag), plus the output flags.
 */
type SimulateFlags = Omit<SimulationOptions, 'validationFraction'> & {
  /** Commander fills these in from the flags' defaults. */
  rounds: number;
  dataset: string;
  nodes: number;
  validation: number;
  out?: string;
  json?: boolean;
  quiet?: boolean;
};

/** The options the flags give; flags left out stay absent, so the schema's defaults and rules see them unset. */
function simulationOptionsOf(flags: SimulateFlags): SimulationOptions {
  const { validation, out: _out, json: _json, quiet: _quiet, ...options } = flags;
  return { ...options, validationFraction: validation };
}

async function simulate(flags: SimulateFlags): Promise<void> {
  if (flags.out) checkOutDir(resolve(flags.out));
  const options = simulationOptionsOf(flags);
  // Bad options fail before anything is printed (the checks are cheap; runSimulation repeats them).
  try {
    resolveOptions(options);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const progress = progressReporter(flags.rounds, !!flags.quiet);
  progress.phase(`loading ${flags.dataset}, partitioning it over ${flags.nodes} nodes and starting workers`);
  let started = false;
  let result;
  try {
    result = await runSimulation(options, (record) => {
      started = true;
      progress.onRound(record);
    });
  } catch (e) {
    progress.stop();
    // Anything that fails before the first round is bad input (flags, files); later it is a run failure.
    throw started ? e : new UsageError((e as Error).message);
  }
  progress.stop();
  const out = flags.out ? resolve(flags.out) : undefined;
  // The attack (kind, strength, Byzantine node ids) goes into the summary only when there was one.
  const summary = result.attack
    ? {
        ...summarize(result, out),
        attack: {
          kind: result.attack.kind,
          scale: result.attack.scale,
          malicious_fraction: result.attack.fraction,
          malicious_nodes: result.attack.nodes,
        },
      }
    : summarize(result, out);
  if (out) await writeRunOutputs(result, summary, out);
  if (flags.json) {
    process.stdout.write(JSON.stringify(summary) + '\n');
  } else {
    process.stderr.write(
      `final test accuracy ${summary.final_accuracy.toFixed(4)} after ${summary.rounds} rounds in ${summary.seconds}s` +
        ` (${result.trainer} trainer, ${(summary.bytes_sent / 1e6).toFixed(1)} MB sent, ${(summary.bytes_received / 1e6).toFixed(1)} MB received)\n` +
        (result.attack ? `attack ${result.attack.kind} by nodes ${result.attack.nodes.join(', ')}\n` : '') +
        `model sha256 ${summary.model_sha256}\n${out ? `saved to ${out} (model/, metrics.json, metrics.csv, partition.json, plot.svg)\n` : ''}`,
    );
  }
}

function addSimulateOptions(cmd: Command, defaults: { rounds: number; target?: number }): Command {
  return cmd
    .option('--dataset <spec>', DATASET_SPEC_FORMS.join(' | '), 'mnist')
    .option('--model <name>', `${BUILTIN_MODELS.join(' | ')} | PATH/model.json`, 'mlp')
    .option('--nodes <n>', 'number of edge nodes', intArg(1, 100000), 10)
    .option('--fraction <f>', 'fraction of nodes sampled each round', floatArg(0, 1, true), 1)
    .option('--min-nodes <n>', 'fewest nodes a round needs', intArg(1))
    .option('--rounds <n>', 'maximum rounds', intArg(1, 100000), defaults.rounds)
    .option('--local-epochs <n>', 'local epochs per round (E)', intArg(1, 1000), 1)
    .option('--batch-size <n>', 'local batch size (B)', intArg(1, 65536), 32)
    .addOption(
      new Option('--optimizer <name>', "local optimizer (default: the model's own)").choices([
        'sgd',
        'adam',
        'momentum',
      ]),
    )
    .option('--lr <rate>', 'local learning rate', floatArg(0, 100, true))
    .option(
      '--partition <spec>',
      'iid | shards:K | dirichlet:ALPHA[:MIN] | quantity:ALPHA[:MIN] | feature:NAME[:ranges|kmeans] | natural:COLUMN',
      'iid',
    )
    .option('--strategy <spec>', strategyHelp(), 'fedavg')
    .option('--seed <n>', 'seed for every random choice', intArg(0, 2 ** 32 - 1), 1)
    .option(
      '--target-accuracy <a>',
      'stop when central test accuracy reaches this',
      floatArg(0, 1, true),
      defaults.target,
    )
    .option(
      '--validation <f>',
      "fraction of each node's data held out for federated evaluation",
      floatArg(0, 0.99),
      0.2,
    )
    .option('--eval-fraction <f>', 'fraction of nodes asked to evaluate each round (0 = none)', floatArg(0, 1), 0)
    .option('--workers <n>', 'worker threads (default: cores)', intArg(1, 64))
    .addOption(new Option('--trainer <kind>', 'local trainer').choices(['auto', 'engine', 'tfjs']).default('auto'))
    .addOption(
      new Option(
        '--attack <kind>',
        'simulate Byzantine nodes: sign-flip (send g - s*delta), gaussian (g + N(0, s^2)), ' +
          'scale (g + s*delta), label-flip (train on y -> C-1-y)',
      ).choices(['none', ...ATTACK_KINDS]),
    )
    .option(
      '--malicious <f>',
      'fraction of nodes that attack (floor(f * nodes), chosen from the seed)',
      floatArg(0, 1, true),
    )
    .option(
      '--attack-scale <s>',
      `attack strength s (default: sign-flip ${DEFAULT_ATTACK_SCALE['sign-flip']}, gaussian sigma ${DEFAULT_ATTACK_SCALE.gaussian}, ` +
        `scale ${DEFAULT_ATTACK_SCALE.scale})`,
      floatArg(0, 1e6, true),
    )
    .option(
      '--secagg',
      'secure aggregation (Bonawitz et al. 2017): the coordinator only ever sees the sum of masked updates',
    )
    .option(
      '--secagg-dropout <f>',
      "with --secagg: fraction of each round's nodes that drop after sharing keys (seeded fault injection)",
      floatArg(0, 1),
    )
    .option(
      '--secagg-clip <c>',
      `with --secagg: clip each coordinate of a node's update to [-c, c] (default ${DEFAULT_SECAGG.clip})`,
      floatArg(0, 1e6, true),
    )
    .option(
      '--secagg-max-weight <n>',
      `with --secagg: most examples a node may weight its update by (default ${DEFAULT_SECAGG.maxWeight})`,
      intArg(1, 2 ** 24),
    )
    .addOption(
      new Option(
        '--dp-noise <source>',
        'dpfedavg noise and sampling: seeded (repeatable; the seed regenerates the noise) or csprng (as deployed)',
      ).choices(['seeded', 'csprng']),
    )
    .option(
      '--local-dp <spec>',
      'local DP: every node clips its update to C and adds noise z C before sending, clip=C,noise=Z[,delta=D]',
    )
    .option(
      '--compression <spec>',
      `how nodes compress updates: ${compressionForms().replaceAll(', ', ' | ')}, then optional ,ef=on|off ` +
        '(error feedback; default on for topk) ,delta=on|off (send local - global; default on) ,rounding=nearest|stochastic (int8)',
      'none',
    )
    .option(
      '--profile <set>',
      'device profiles for a virtual clock: uniform | slow20 (20% of nodes 5-10x slower) | heavytail | PATH.json',
    )
    .option('--deadline <s>', 'synchronous rounds close after this many simulated seconds', floatArg(0, 1e9, true))
    .option('--over-select <x>', 'ask k(1+x) nodes and fuse the first k to finish in simulated time', floatArg(0, 10))
    .addOption(
      new Option('--mode <mode>', 'sync: rounds; async: FedBuff (buffered asynchronous fusion)')
        .choices(['sync', 'async'])
        .default('sync'),
    )
    .option('--buffer-size <k>', 'async: updates fused at a time (K; default min(10, concurrency))', intArg(1))
    .option('--concurrency <n>', "async: nodes training at once (default: a round's sample size)", intArg(1))
    .option('--server-lr <eta>', 'async: server learning rate (default 1)', floatArg(0, 100, true))
    .option(
      '--queue <redis-url>',
      'run the nodes on `edgefed sim-worker` processes through a BullMQ queue on this Redis (default: worker threads here)',
    )
    .option('--queue-name <name>', 'BullMQ queue name (with --queue)')
    .addOption(
      new Option(
        '--standardize <stats>',
        'CSV feature scaling: central (pooled rows; the default here) | node (each its own) | federated (one analytics pass)',
      ).choices(['central', 'node', 'federated']),
    )
    .option('--limit-train <n>', 'use only the first N training examples', intArg(1))
    .option('--limit-test <n>', 'use only the first N test examples', intArg(1))
    .option('--out <dir>', 'write metrics, model, partition report and plot here')
    .option('--json', 'print one JSON summary object on stdout at the end')
    .option('--quiet', 'no progress bar');
}

addSimulateOptions(program.command('simulate'), { rounds: 20 })
  .description('run a federation of virtual nodes on this machine (the same round engine as deployment)')
  .addHelpText(
    'after',
    `
Examples:
  edgefed simulate --nodes 10 --rounds 20 --target-accuracy 0.97 --seed 1 --json
  edgefed simulate --model 2nn --nodes 100 --fraction 0.1 --partition shards:2 --batch-size 10 --optimizer sgd
  edgefed simulate --dataset 'csv:examples/industrial-fault/synthetic-pump-sensors.csv?label=fault&keep=machine_id' \\
    --nodes 8 --partition natural:machine_id --standardize federated --out runs/faults
  edgefed simulate --nodes 20 --rounds 10 --attack sign-flip --malicious 0.2 --strategy multikrum:f=4 --json
  edgefed simulate --nodes 30 --fraction 0.3 --profile slow20 --mode async --buffer-size 3 --target-accuracy 0.95 --json`,
  )
  .action(simulate);

addSimulateOptions(program.command('demo'), { rounds: 20, target: 0.97 })
  .description(
    'the seed example: reference MLP on MNIST, 10 nodes, FedAvg, until 97% test accuracy; saves to runs/demo-<time>',
  )
  .action(async (flags: SimulateFlags) => {
    flags.out ??= `runs/demo-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    process.stderr.write(
      `EdgeFed demo: ${flags.model} on ${flags.dataset}, ${flags.nodes} nodes, ${flags.partition}, ${flags.strategy}, up to ${flags.rounds} rounds (target ${flags.targetAccuracy})\n`,
    );
    await simulate(flags);
  });

addPredictCommand(program);
addDeployCommands(program);
addUpCommand(program);
addOpenCommand(program);
addGatewayCommand(program);
addQueueCommands(program);
addSchemaCommand(program);
addExportCommand(program);
addDoctorCommand(program);
addAnalyticsCommand(program);
addQuantizeCommand(program);

await runProgram(program);

/** The load lab's command line: its flags, checked, and the paths it starts. */
import { parseArgs } from 'node:util';
import { join, resolve } from 'node:path';
import { REPO } from '../support/results-io.js';
import { MAX_NICE } from '../../src/coordinator/thread-priority.js';

export const BENCH = 'connections';
export const CLI = join(REPO, 'bin', 'edgefed.mjs');
export const CLIENT = join(REPO, 'bench', 'connections-client.ts');
export const SAMPLE_MS = 200;
/** The fleet (MQTT topic prefix) the coordinator serves with --transport mqtt. */
export const FLEET = 'bench';

export interface Args {
  nodes: number;
  procs: number;
  rounds: number;
  examples: number;
  data: 'mnist' | 'synthetic';
  limitTest: number;
  idleS: number;
  profile: boolean;
  /** on: nodes enrol keys and sign (the CLI's default); off: `--auth off`. Ignored by coordinators without auth. */
  auth: 'on' | 'off';
  /** ws: every node opens a WebSocket to the coordinator; mqtt: every node links through a mosquitto the bench starts. */
  transport: 'ws' | 'mqtt';
  coordinatorEntry: string | null;
  /** Extra node/V8 flags for the coordinator process only (e.g. `--max-semi-space-size=32`), space-separated. */
  coordinatorNodeFlags: string[];
  /** Where the coordinator's stdout lines other than its JSON go (e.g. `--trace-gc` output); null: dropped. */
  coordinatorStdout: string | null;
  /** Niceness of the client processes (0: as the coordinator); > 0 lets the coordinator's threads run first. */
  clientNice: number;
  /** --worker-nice for the coordinator (its worker threads' nice value); null: the coordinator's default. */
  workerNice: number | null;
  timeoutS: number;
  resultsDir: string;
  reportOnly: boolean;
}

export function parseCli(argv: string[]): Args {
  const { values } = parseArgs({
    args: argv,
    options: {
      nodes: { type: 'string', default: '1000' },
      procs: { type: 'string', default: '4' },
      rounds: { type: 'string', default: '5' },
      examples: { type: 'string', default: '32' },
      data: { type: 'string', default: 'mnist' },
      'limit-test': { type: 'string', default: '1000' },
      'idle-s': { type: 'string', default: '10' },
      profile: { type: 'boolean', default: false },
      auth: { type: 'string', default: 'on' },
      transport: { type: 'string', default: 'ws' },
      'coordinator-entry': { type: 'string' },
      'coordinator-node-flags': { type: 'string', default: '' },
      'coordinator-stdout': { type: 'string' },
      'client-nice': { type: 'string', default: '0' },
      'worker-nice': { type: 'string' },
      'timeout-s': { type: 'string', default: '3600' },
      'results-dir': { type: 'string', default: join(REPO, 'bench', 'results') },
      'report-only': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(
      'usage: node --import tsx bench/connections.ts [--nodes 1000] [--procs 4] [--rounds 5] [--examples 32] [--data mnist|synthetic]\n' +
        '         [--limit-test 1000] [--idle-s 10] [--profile] [--auth on|off] [--transport ws|mqtt] [--timeout-s 3600] [--results-dir DIR]\n' +
        '         [--client-nice 0..19]   (the simulated nodes yield the shared cores to the coordinator, as on machines of their own)\n' +
        "         [--worker-nice 0..19]   (the coordinator's --worker-nice: its verify threads yield to its event loop; default: the CLI's)\n" +
        '         [--coordinator-node-flags="--max-semi-space-size=32 ..."]   (node/V8 flags for the coordinator process only)\n' +
        "         [--coordinator-stdout FILE]   (appends the coordinator's non-JSON stdout there, e.g. its --trace-gc lines)\n" +
        '         [--coordinator-entry FILE]   (A/B experiments: a script taking `coordinator --port P --db F` like bin/edgefed.mjs; .ts runs with tsx)\n' +
        '       node --import tsx bench/connections.ts --report-only [--results-dir DIR]\n',
    );
    process.exit(0);
  }
  const int = (name: string, s: string, min: number): number => {
    const v = Number(s);
    if (s.trim() === '' || !Number.isInteger(v) || v < min)
      throw new Error(`--${name}: expected a whole number >= ${min}, got '${s}'`);
    return v;
  };
  if (values.data !== 'mnist' && values.data !== 'synthetic')
    throw new Error(`--data: expected mnist or synthetic, got '${values.data}'`);
  if (values.auth !== 'on' && values.auth !== 'off')
    throw new Error(`--auth: expected on or off, got '${values.auth}'`);
  if (values.transport !== 'ws' && values.transport !== 'mqtt')
    throw new Error(`--transport: expected ws or mqtt, got '${values.transport}'`);
  const a: Args = {
    nodes: int('nodes', values.nodes!, 1),
    procs: int('procs', values.procs!, 1),
    rounds: int('rounds', values.rounds!, 1),
    examples: int('examples', values.examples!, 1),
    data: values.data,
    limitTest: int('limit-test', values['limit-test']!, 1),
    idleS: int('idle-s', values['idle-s']!, 0),
    profile: values.profile!,
    auth: values.auth,
    transport: values.transport,
    coordinatorEntry: values['coordinator-entry'] ? resolve(values['coordinator-entry']) : null,
    coordinatorNodeFlags: values['coordinator-node-flags']!.split(/\s+/).filter((f) => f !== ''),
    coordinatorStdout: values['coordinator-stdout'] ? resolve(values['coordinator-stdout']) : null,
    clientNice: int('client-nice', values['client-nice']!, 0),
    workerNice: values['worker-nice'] === undefined ? null : int('worker-nice', values['worker-nice'], 0),
    timeoutS: int('timeout-s', values['timeout-s']!, 1),
    resultsDir: resolve(values['results-dir']!),
    reportOnly: values['report-only']!,
  };
  for (const f of a.coordinatorNodeFlags)
    if (!f.startsWith('--')) throw new Error(`--coordinator-node-flags: expected flags starting with --, got '${f}'`);
  // The coordinator's own bound (thread-priority.ts), for both: a nice value is a nice value.
  if (a.clientNice > MAX_NICE) throw new Error(`--client-nice: expected 0 to ${MAX_NICE}, got ${a.clientNice}`);
  if (a.workerNice !== null && a.workerNice > MAX_NICE)
    throw new Error(`--worker-nice: expected 0 to ${MAX_NICE}, got ${a.workerNice}`);
  if (a.procs > a.nodes) throw new Error(`--procs ${a.procs} is more than --nodes ${a.nodes}`);
  if (a.data === 'mnist' && a.nodes * a.examples > 60000)
    throw new Error(
      `--data mnist: ${a.nodes} x ${a.examples} rows is more than MNIST's 60000; use --data synthetic or fewer --examples`,
    );
  return a;
}

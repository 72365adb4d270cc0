/**
 * A run whose nodes could not all be held: the bench records why (the drop table by cause, from the clients and
 * the coordinator's counter, and the OS's listen counters) with the environment and the load, instead of
 * leaving only a timeout on stderr.
 */
import { dropTable, type DropCauses } from './drop-causes.js';

export interface ConnectFailure {
  key: string;
  date: string;
  nodes: number;
  procs: number;
  auth: string;
  transport: string;
  data: string;
  /** Nodes welcomed and connections open when the bench gave up. */
  welcomed: number;
  open: number;
  waited_seconds: number;
  error: string;
  drop_causes: DropCauses;
  machine: { cpu_model: string; cpu_cores: number; memory_gb: number; note: string };
  load_average: { start: number; end: number };
  git_commit: string | null;
}

/** Thrown by the bench once the failure is measured; main() records it and exits 1. */
export class ConnectFailed extends Error {
  constructor(readonly failure: ConnectFailure) {
    super(failure.error);
  }
}

/** The markdown section listing the runs that could not hold their nodes, with their drop tables. */
export function connectFailuresMarkdown(failures: readonly ConnectFailure[]): string[] {
  if (failures.length === 0) return [];
  const out = ['', '## Runs that could not hold every node', ''];
  for (const f of failures)
    out.push(
      `### ${f.nodes} nodes, ${f.procs} client processes, auth ${f.auth}, ${f.transport}, ${f.data} data (${f.date.slice(0, 10)})`,
      '',
      `- ${f.error}: ${f.welcomed} of ${f.nodes} welcomed, ${f.open} open after ${Math.round(f.waited_seconds)} s.`,
      `- Machine: ${f.machine.cpu_model}, ${f.machine.cpu_cores} cores (${f.machine.note}), ${f.machine.memory_gb} GB; load average (1 min) ` +
        `${f.load_average.start} at the start, ${f.load_average.end} at the end; commit ${f.git_commit?.slice(0, 12) ?? '?'}.`,
      '- Drops by cause:',
      ...dropTable(f.drop_causes).map((l) => `  - ${l}`),
      '',
    );
  return out;
}

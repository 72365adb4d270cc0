/**
 * Where the NumPy reference programs are: `../shared/bench` beside the main checkout, or two levels up from a
 * worktree in `wt/<branch>`. The first that exists wins; otherwise the main-checkout path (the bench then
 * reports it missing).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from './support/results-io.js';

export function sharedBenchFile(name: string): string {
  const candidates = [join(REPO, '..', 'shared', 'bench', name), join(REPO, '..', '..', 'shared', 'bench', name)];
  return candidates.find((p) => existsSync(p)) ?? candidates[0];
}

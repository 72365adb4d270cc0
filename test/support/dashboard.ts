/** Builds the dashboard (npm run build:dashboard: Vite into web/dashboard/dist) for tests that serve it. */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DASHBOARD_DIST } from '../../src/coordinator/routes-dashboard.js';

const ROOT = join(DASHBOARD_DIST, '..', '..', '..');

/** Runs the build (always, or only when dist has no index.html) and fails with its output if it fails. */
export function buildDashboard(onlyIfMissing = false): void {
  if (onlyIfMissing && existsSync(join(DASHBOARD_DIST, 'index.html'))) return;
  const r = spawnSync(
    process.execPath,
    [join(ROOT, 'node_modules', 'vite', 'bin', 'vite.js'), 'build', 'web/dashboard'],
    { cwd: ROOT, encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`npm run build:dashboard failed:\n${r.stdout}${r.stderr}`);
}

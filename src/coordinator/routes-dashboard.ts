/** The dashboard page (web/dashboard, built by `npm run build:dashboard`) at /dashboard/. */
import type { FastifyInstance } from 'fastify';
import { fileURLToPath } from 'node:url';
import { registerStaticDir } from './static-files.js';

export const DASHBOARD_DIST = fileURLToPath(new URL('../../web/dashboard/dist/', import.meta.url));

export function registerDashboard(app: FastifyInstance, dir = DASHBOARD_DIST): void {
  registerStaticDir(app, {
    prefix: '/dashboard',
    dir,
    notBuilt: 'the dashboard is not built: run `npm run build:dashboard`',
  });
}

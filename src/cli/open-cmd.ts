/**
 * `edgefed open DIR|DB`: a saved coordinator database (e.g. runs/up-<time>/) served read-only on loopback for
 * viewing: the dashboard, the runs and their records, model downloads. Nothing resumes, no node is accepted, and
 * every route that would change something answers 403; reads need no token because it listens on loopback only.
 */
import type { Command } from 'commander';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { intArg, UsageError } from './args.js';
import { startCoordinator } from '../coordinator/server.js';
import { DatabaseLockedError } from '../coordinator/db-lock.js';
import { StoreError } from '../coordinator/store.js';
import { addLogFormatOption, makeLogger } from './logger.js';

/** A run folder (with edgefed.db in it) or a database file. */
export function databaseOf(path: string): string {
  if (!existsSync(path))
    throw new UsageError(`${path}: no such file or folder (a runs/up-<time> folder or a coordinator's .db file)`);
  if (!statSync(path).isDirectory()) return path;
  const db = join(path, 'edgefed.db');
  if (!existsSync(db)) throw new UsageError(`${path}: no edgefed.db in this folder`);
  return db;
}

export function addOpenCommand(program: Command): void {
  const command = program
    .command('open')
    .description('serve a saved coordinator database read-only for viewing (dashboard, runs, models)')
    .argument('<path>', 'a run folder written by edgefed up (runs/up-<time>) or a coordinator database file')
    .option('--port <n>', 'port on 127.0.0.1 (0 = any free port)', intArg(0, 65535), 0);
  addLogFormatOption(command)
    .addHelpText(
      'after',
      `
Examples:
  edgefed open runs/up-2026-12-07T02-30-00-000Z
  edgefed open edgefed.db --port 8090`,
    )
    .action(async (path: string, f: { port: number; logFormat?: string }) => {
      const db = databaseOf(path);
      const coordinator = await startCoordinator({
        port: f.port,
        host: '127.0.0.1',
        db,
        readOnly: true,
        publicRead: true,
        logger: makeLogger({ level: 'warn', format: f.logFormat, base: { service: 'coordinator', pid: process.pid } }),
      }).catch((e: Error) => {
        throw e instanceof DatabaseLockedError || e instanceof StoreError ? new UsageError(e.message) : e;
      });
      const runs = coordinator.store.listRuns();
      process.stderr.write(
        `${db}: ${runs.length} run${runs.length === 1 ? '' : 's'} (${runs.map((r) => `#${r.id} ${r.status}`).join(', ') || 'none'}), read-only\n` +
          `dashboard ${coordinator.dashboardUrl}  (Ctrl-C to close)\n`,
      );
      const close = () => void coordinator.close().then(() => process.exit(0));
      process.on('SIGINT', close);
      process.on('SIGTERM', close);
    });
}

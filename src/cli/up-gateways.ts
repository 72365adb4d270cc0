/** The process tree `edgefed up` starts: node processes, or with --gateways G, G gateways each serving its share. */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ADMIN_TOKEN_ENV, JOIN_TOKEN_ENV } from './secret-flags.js';

/** Child environment: quiet logs, and the secrets it needs (never on its command line, which `ps` shows). */
const childEnv = (secrets: Record<string, string>) => ({ env: { ...process.env, EDGEFED_LOG: 'warn', ...secrets } });

/** Where `edgefed up` keeps its children's identities (beside the database, so a rerun reuses them) and logs. */
export interface UpDirs {
  keys: string;
  logs: string;
}

/** The log file of child `name` (its stderr: a node refused for good explains why on its last line). */
export const childLog = (dirs: UpDirs, name: string) => join(dirs.logs, `${name}.log`);

/** The `--name` a child of `edgefed up` was started with. */
export const childName = (child: ChildProcess) => child.spawnargs[child.spawnargs.indexOf('--name') + 1] ?? 'child';

/** The last non-empty line child `name` wrote to its log, for saying why it stopped. */
export function lastLogLine(dirs: UpDirs, name: string): string {
  try {
    const lines = readFileSync(childLog(dirs, name), 'utf8').trim().split('\n');
    return lines.at(-1)?.slice(0, 500) ?? '';
  } catch {
    return '';
  }
}

function logFd(dirs: UpDirs, name: string): number {
  mkdirSync(dirs.logs, { recursive: true });
  return openSync(childLog(dirs, name), 'a');
}

/** Node process i of n, holding MNIST shard i/n, enrolled at `url` with a join token from it. */
export function spawnNode(
  cli: string,
  dirs: UpDirs,
  url: string,
  i: number,
  n: number,
  joinToken: string,
): ChildProcess {
  const log = logFd(dirs, `node${i}`);
  const child = spawn(
    process.execPath,
    [
      cli,
      'node',
      '--coordinator',
      url,
      '--data',
      `mnist-partition:${i}/${n}`,
      '--name',
      `node${i}`,
      '--tags',
      `slot=${i % 2}`,
      '--key',
      join(dirs.keys, `node${i}.key`),
      '--share-labels',
    ],
    { stdio: ['ignore', 'ignore', log], ...childEnv({ [JOIN_TOKEN_ENV]: joinToken }) },
  );
  closeSync(log); // the child holds its own copy
  return child;
}

/** The API address a gateway process prints on its first stdout line once it listens. */
function gatewayUrl(child: ChildProcess, name: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.once('line', (line) => {
      try {
        resolve(String((JSON.parse(line) as { api: unknown }).api));
      } catch {
        reject(new Error(`${name} printed '${line.slice(0, 200)}' instead of its address`));
      }
      lines.close();
    });
    child.once('exit', (code) => reject(new Error(`${name} exited with code ${code} before listening`)));
  });
}

/**
 * G gateway processes enrolled at the coordinator `url` (join tokens from `joinToken`), each on a free port
 * with its own admin token; node i joins gateway i mod G. Returns every child, gateways first.
 */
export async function spawnGatewayTree(
  cli: string,
  dirs: UpDirs,
  url: string,
  joinToken: () => string,
  gateways: number,
  nodes: number,
): Promise<ChildProcess[]> {
  const children: ChildProcess[] = [];
  try {
    for (let g = 0; g < gateways; g++) {
      const name = `gateway${g}`;
      const admin = randomBytes(24).toString('hex');
      const log = logFd(dirs, name);
      const child = spawn(
        process.execPath,
        [cli, 'gateway', '--coordinator', url, '--port', '0', '--name', name, '--key', join(dirs.keys, `${name}.key`)],
        {
          stdio: ['ignore', 'pipe', log],
          ...childEnv({ [JOIN_TOKEN_ENV]: joinToken(), [ADMIN_TOKEN_ENV]: admin }),
        },
      );
      closeSync(log);
      children.push(child);
      const api = await gatewayUrl(child, name);
      for (let i = g; i < nodes; i += gateways) {
        const response = await fetch(`${api}/v1/admin/join-tokens`, {
          method: 'POST',
          headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
          body: '{}',
        });
        if (response.status !== 201) throw new Error(`${name} refused a join token (HTTP ${response.status})`);
        children.push(spawnNode(cli, dirs, api, i, nodes, ((await response.json()) as { token: string }).token));
      }
    }
    return children;
  } catch (e) {
    for (const ch of children) ch.kill('SIGTERM');
    throw e;
  }
}

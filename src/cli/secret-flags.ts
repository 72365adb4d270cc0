/**
 * Secrets for child processes without putting them on a command line (which `ps` shows every user): a
 * flag, a file named by a flag, or an environment variable.
 */
import { readFileSync } from 'node:fs';
import { UsageError } from './args.js';

export const JOIN_TOKEN_ENV = 'EDGEFED_JOIN_TOKEN';
export const ADMIN_TOKEN_ENV = 'EDGEFED_ADMIN_TOKEN';

/** The secret from `--x` (value), `--x-file` (file), or the environment variable, in that order; undefined if none. */
export function secretFrom(
  value: string | undefined,
  file: string | undefined,
  env: string,
  flag: string,
): string | undefined {
  if (value !== undefined && file !== undefined) throw new UsageError(`--${flag} and --${flag}-file: give one of them`);
  if (value !== undefined) return value;
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8').trim();
    } catch (e) {
      throw new UsageError(
        `--${flag}-file ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`,
      );
    }
    if (!text) throw new UsageError(`--${flag}-file ${file}: the file is empty`);
    return text;
  }
  const fromEnv = process.env[env]?.trim();
  return fromEnv ? fromEnv : undefined;
}

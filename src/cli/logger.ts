/**
 * Loggers of the long-running commands (coordinator, node, gateway): readable lines on a terminal
 * (pino-pretty), JSON lines otherwise, for log shippers. `--log-format` or $EDGEFED_LOG_FORMAT overrides;
 * the level comes from --log-level, else $EDGEFED_LOG, else info.
 */
import { Option, type Command } from 'commander';
import pino, { type Logger } from 'pino';
import { createRequire } from 'node:module';
import { UsageError } from './args.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
export const LOG_FORMATS = ['json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export interface LoggerOptions {
  level?: string;
  format?: string;
  base: Record<string, unknown>;
}

export function chooseLogFormat(flag: string | undefined, isTTY: boolean): LogFormat {
  const chosen = flag ?? process.env.EDGEFED_LOG_FORMAT ?? (isTTY ? 'pretty' : 'json');
  if (!(LOG_FORMATS as readonly string[]).includes(chosen)) {
    throw new UsageError(`${flag ? '--log-format' : 'EDGEFED_LOG_FORMAT'}: expected json or pretty, got '${chosen}'`);
  }
  return chosen as LogFormat;
}

export function makeLogger(options: LoggerOptions): Logger {
  const level = options.level ?? process.env.EDGEFED_LOG ?? 'info';
  if (!LOG_LEVELS.includes(level))
    throw new UsageError(
      `${options.level ? '--log-level' : 'EDGEFED_LOG'}: expected one of ${LOG_LEVELS.join(', ')}, got '${level}'`,
    );
  const format = chooseLogFormat(options.format, !!process.stderr.isTTY);
  if (format === 'json') return pino({ level, base: options.base }, pino.destination(2));
  // Loaded only for pretty lines (a node logging JSON never needs it); synchronous, in this thread, so a
  // crash's last lines are not lost in a transport worker.
  const pretty = createRequire(import.meta.url)('pino-pretty') as typeof import('pino-pretty');
  const stream = pretty({
    destination: 2,
    sync: true,
    colorize: !!process.stderr.isTTY,
    ignore: 'hostname',
    translateTime: 'SYS:HH:MM:ss.l',
  });
  return pino({ level, base: options.base }, stream);
}

export function addLogFormatOption(command: Command): Command {
  return command.addOption(
    new Option(
      '--log-format <format>',
      'log lines as json or pretty (default: pretty on a terminal, else json)',
    ).choices([...LOG_FORMATS]),
  );
}

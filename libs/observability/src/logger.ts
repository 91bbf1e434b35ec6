import { ConsoleLogger, type LogLevel as NestLogLevel } from '@nestjs/common';
import type { RuntimeConfig } from '@app/config';

const SEVERITY: readonly NestLogLevel[] = ['fatal', 'error', 'warn', 'log', 'debug', 'verbose'];

/** Nest's levels from ours: `info` is Nest's `log`; each level includes the ones above it. */
export function nestLogLevels(level: RuntimeConfig['logLevel']): NestLogLevel[] {
  const threshold = SEVERITY.indexOf(level === 'info' ? 'log' : level);
  return SEVERITY.slice(0, threshold + 1);
}

/**
 * The process logger: coloured lines for a person at a terminal, or one JSON object per line
 * (`LOG_FORMAT=json`) for a log shipper; an object message stays structured in JSON mode.
 */
export function createLogger(
  runtime: Pick<RuntimeConfig, 'logFormat' | 'logLevel'>,
  appName: string,
): ConsoleLogger {
  const json = runtime.logFormat === 'json';
  return new ConsoleLogger({
    prefix: appName,
    json,
    colors: !json && process.stdout.isTTY === true,
    logLevels: nestLogLevels(runtime.logLevel),
  });
}

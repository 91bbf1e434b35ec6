import { ConsoleLogger, type LogLevel as NestLogLevel } from '@nestjs/common';
import type { RuntimeConfig } from '@app/config';

const SEVERITY: readonly NestLogLevel[] = ['fatal', 'error', 'warn', 'log', 'debug', 'verbose'];
const LOG_EVENT = Symbol('log event');

/** A log message with structured fields: text for a person, text plus fields in JSON logs. */
export interface LogEvent {
  readonly [LOG_EVENT]: true;
  readonly text: string;
  readonly fields: Readonly<Record<string, unknown>>;
}

/** `logger.log(logEvent('worker 2-4 wrote 5 entries', { worker: '2-4', entries: 5 }))` */
export function logEvent(text: string, fields: Record<string, unknown>): LogEvent {
  return { [LOG_EVENT]: true, text, fields };
}

function isLogEvent(message: unknown): message is LogEvent {
  return typeof message === 'object' && message !== null && LOG_EVENT in message;
}

/** Nest's levels from ours: `info` is Nest's `log`; each level includes the ones above it. */
export function nestLogLevels(level: RuntimeConfig['logLevel']): NestLogLevel[] {
  const threshold = SEVERITY.indexOf(level === 'info' ? 'log' : level);
  return SEVERITY.slice(0, threshold + 1);
}

/** Nest's own start-up wiring (each module, controller and route): debug, not news. */
const WIRING_CONTEXTS = new Set([
  'NestFactory',
  'InstanceLoader',
  'RoutesResolver',
  'RouterExplorer',
  'NestApplication',
]);

/**
 * Nest's console logger that prints a LogEvent as its text, or in JSON mode as text plus fields,
 * and Nest's start-up wiring at debug, so that a start-up at info shows what the app itself says.
 */
export class AppLogger extends ConsoleLogger {
  override log(message: unknown, ...rest: unknown[]): void {
    const context = rest.at(-1);
    if (typeof context === 'string' && WIRING_CONTEXTS.has(context)) this.debug(message, ...rest);
    else super.log(message, ...rest);
  }

  protected override stringifyMessage(message: unknown, logLevel: NestLogLevel): unknown {
    return super.stringifyMessage(isLogEvent(message) ? message.text : message, logLevel);
  }

  protected override getJsonLogObject(
    message: unknown,
    options: Parameters<ConsoleLogger['getJsonLogObject']>[1],
  ): ReturnType<ConsoleLogger['getJsonLogObject']> {
    if (!isLogEvent(message)) return super.getJsonLogObject(message, options);
    return { ...super.getJsonLogObject(message.text, options), ...message.fields };
  }
}

/**
 * The process logger: coloured lines for a person at a terminal, or one JSON object per line
 * (`LOG_FORMAT=json`) for a log shipper.
 */
export function createLogger(runtime: Pick<RuntimeConfig, 'logFormat' | 'logLevel'>, appName: string): AppLogger {
  const json = runtime.logFormat === 'json';
  return new AppLogger({
    prefix: appName,
    json,
    colors: !json && process.stdout.isTTY === true,
    logLevels: nestLogLevels(runtime.logLevel),
  });
}

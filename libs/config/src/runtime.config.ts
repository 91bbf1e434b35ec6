import { configNamespace } from './config-namespace';
import { readEnum, readInt } from './env';

export const LOG_FORMATS = ['pretty', 'json'] as const;
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'verbose'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];
export type LogLevel = (typeof LOG_LEVELS)[number];

export function readRuntimeConfig(env: NodeJS.ProcessEnv = process.env) {
  return {
    shutdownTimeoutMs: readInt(env, 'SHUTDOWN_TIMEOUT_MS', 30_000, { min: 100, max: 3_600_000 }),
    logFormat: readEnum<LogFormat>(env, 'LOG_FORMAT', 'pretty', LOG_FORMATS),
    logLevel: readEnum<LogLevel>(env, 'LOG_LEVEL', 'info', LOG_LEVELS),
  };
}

export type RuntimeConfig = ReturnType<typeof readRuntimeConfig>;
/** What every process needs regardless of its role: logging and the shutdown budget. */
export const runtimeConfig = configNamespace<RuntimeConfig>('runtime');

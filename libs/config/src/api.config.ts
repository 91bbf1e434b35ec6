import { configNamespace } from './config-namespace';
import { readHost, readInt, readOptionalRedisUrl, readOptionalString } from './env';

export function readApiConfig(env: NodeJS.ProcessEnv = process.env) {
  return {
    host: readHost(env, 'API_HOST', '0.0.0.0'),
    port: readInt(env, 'API_PORT', 3000, { min: 0, max: 65_535 }),
    token: readOptionalString(env, 'API_TOKEN'),
    maxBodyBytes: readInt(env, 'MAX_BODY_BYTES', 1_048_576, { min: 64, max: 1_073_741_824 }),
    maxEntries: readInt(env, 'MAX_ENTRIES', 10_000, { min: 1, max: 10_000_000 }),
    // Below ~50 ms no confirm of a persistent message arrives in time even on an idle broker: at 10
    // every request was a 503 and the api called the broker unreachable.
    publishTimeoutMs: readInt(env, 'PUBLISH_TIMEOUT_MS', 5_000, { min: 50, max: 600_000 }),
    requestTimeoutMs: readInt(env, 'REQUEST_TIMEOUT_MS', 30_000, { min: 100, max: 3_600_000 }),
    /** How long an Idempotency-Key and its answer are remembered (up to 30 days). */
    idempotencyTtlS: readInt(env, 'IDEMPOTENCY_TTL_S', 86_400, { min: 1, max: 2_592_000 }),
    /** The Redis every api replica shares its Idempotency-Keys through; unset: this process's memory. */
    redisUrl: readOptionalRedisUrl(env, 'REDIS_URL'),
  };
}

export type ApiConfig = ReturnType<typeof readApiConfig>;
export const apiConfig = configNamespace<ApiConfig>('api');

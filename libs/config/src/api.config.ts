import { configNamespace } from './config-namespace';
import { readHost, readInt, readOptionalString } from './env';

export function readApiConfig(env: NodeJS.ProcessEnv = process.env) {
  return {
    host: readHost(env, 'API_HOST', '0.0.0.0'),
    port: readInt(env, 'API_PORT', 3000, { min: 0, max: 65_535 }),
    token: readOptionalString(env, 'API_TOKEN'),
    maxBodyBytes: readInt(env, 'MAX_BODY_BYTES', 1_048_576, { min: 64, max: 1_073_741_824 }),
    maxEntries: readInt(env, 'MAX_ENTRIES', 10_000, { min: 1, max: 10_000_000 }),
    publishTimeoutMs: readInt(env, 'PUBLISH_TIMEOUT_MS', 5_000, { min: 1, max: 600_000 }),
    requestTimeoutMs: readInt(env, 'REQUEST_TIMEOUT_MS', 30_000, { min: 100, max: 3_600_000 }),
  };
}

export type ApiConfig = ReturnType<typeof readApiConfig>;
export const apiConfig = configNamespace<ApiConfig>('api');

import { Logger } from '@nestjs/common';
import Redis from 'ioredis';
import { describeError } from '@app/observability';
import {
  type CompletedRecord,
  type IdempotencyRecord,
  type IdempotencyStore,
  IdempotencyStoreUnavailableError,
  type InFlightRecord,
} from './idempotency.store';

/** Longest wait for one Redis command, queued while reconnecting or sent, before a 503. */
export const REDIS_COMMAND_TIMEOUT_MS = 1_000;
/** Longest pause between two attempts to reconnect to Redis. */
const RECONNECT_MAX_MS = 2_000;

/** Deletes KEYS[1] only while it still holds ARGV[1]: a claim is released by its holder alone. */
const RELEASE_IF_HELD = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

interface ReleasingRedis extends Redis {
  releaseIfHeld(key: string, value: string): Promise<number>;
}

/**
 * The store every api replica shares: one Redis string per key, `<namespace><key>`, holding the
 * record as JSON. A claim is one `SET NX PX GET` (atomic: the first replica wins, the others read
 * what it wrote), the answer one `SET PX`, a release one script that deletes only its own claim.
 * While Redis is unreachable every call rejects within REDIS_COMMAND_TIMEOUT_MS.
 */
export class RedisIdempotencyStore implements IdempotencyStore {
  private readonly logger = new Logger(RedisIdempotencyStore.name);
  private readonly redis: ReleasingRedis;
  private down = false;

  constructor(url: string, namespace: string) {
    this.redis = new Redis(url, {
      keyPrefix: namespace,
      commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
      // A command waits through at most one reconnect attempt; the client's request gets 503, not a hang.
      maxRetriesPerRequest: 1,
      retryStrategy: (attempt) => Math.min(attempt * 200, RECONNECT_MAX_MS),
    }) as ReleasingRedis;
    this.redis.defineCommand('releaseIfHeld', { numberOfKeys: 1, lua: RELEASE_IF_HELD });
    this.redis.on('error', (error: unknown) => {
      if (this.down) return;
      this.down = true;
      this.logger.error(`Redis is unreachable (${describeError(error)}); keyed requests get 503 until it is back`);
    });
    this.redis.on('ready', () => {
      if (this.down) this.logger.log('Redis is reachable again');
      this.down = false;
    });
  }

  async claim(key: string, claim: InFlightRecord, claimTtlMs: number): Promise<IdempotencyRecord | undefined> {
    const found = await this.call('claim', () =>
      this.redis.set(key, JSON.stringify(claim), 'PX', claimTtlMs, 'NX', 'GET'),
    );
    return found === null ? undefined : (JSON.parse(found) as IdempotencyRecord);
  }

  async complete(key: string, record: CompletedRecord, ttlMs: number): Promise<void> {
    await this.call('complete', () => this.redis.set(key, JSON.stringify(record), 'PX', ttlMs));
  }

  async release(key: string, claim: InFlightRecord): Promise<void> {
    await this.call('release', () => this.redis.releaseIfHeld(key, JSON.stringify(claim)));
  }

  async close(): Promise<void> {
    try {
      await this.redis.quit();
    } catch {
      // Not connected: nothing to say goodbye to.
      this.redis.disconnect();
    }
  }

  private async call<T>(what: string, command: () => Promise<T>): Promise<T> {
    try {
      return await command();
    } catch (error) {
      throw new IdempotencyStoreUnavailableError(`Redis did not ${what} the Idempotency-Key: ${describeError(error)}`, {
        cause: error,
      });
    }
  }
}

import { LRUCache } from 'lru-cache';
import type { Clock, CompletedRecord, IdempotencyRecord, IdempotencyStore, InFlightRecord } from './idempotency.store';

/** Keys a single api remembers at most; past it the least recently used one is forgotten first. */
export const MEMORY_STORE_MAX_KEYS = 100_000;

/**
 * The store of a single api: a bounded LRU with a TTL per key, in this process's memory. Each
 * method runs to completion without awaiting, so a claim is atomic. A key forgotten early, to keep
 * within `maxKeys`, only means that a repeat is processed again, under the same ids.
 */
export class MemoryIdempotencyStore implements IdempotencyStore {
  private readonly records: LRUCache<string, IdempotencyRecord>;

  constructor({ maxKeys = MEMORY_STORE_MAX_KEYS, clock = Date }: { maxKeys?: number; clock?: Clock } = {}) {
    // ttlResolution 0: every read asks the clock, so a fake clock in a test is obeyed at once.
    this.records = new LRUCache({ max: maxKeys, perf: clock, ttlResolution: 0, ttlAutopurge: false });
  }

  get size(): number {
    return this.records.size;
  }

  claim(key: string, claim: InFlightRecord, claimTtlMs: number): Promise<IdempotencyRecord | undefined> {
    const found = this.records.get(key);
    if (found === undefined) this.records.set(key, claim, { ttl: claimTtlMs });
    return Promise.resolve(found);
  }

  complete(key: string, record: CompletedRecord, ttlMs: number): Promise<void> {
    this.records.set(key, record, { ttl: ttlMs });
    return Promise.resolve();
  }

  release(key: string, claim: InFlightRecord): Promise<void> {
    const found = this.records.get(key);
    if (found?.state === 'in-flight' && found.token === claim.token) this.records.delete(key);
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.records.clear();
    return Promise.resolve();
  }
}

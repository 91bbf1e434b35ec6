import type { Clock, CompletedRecord, InFlightRecord } from './idempotency.store';
import { MemoryIdempotencyStore } from './memory-idempotency.store';

class FakeClock implements Clock {
  constructor(private ms = 1_000_000) {}

  now(): number {
    return this.ms;
  }

  advance(ms: number): void {
    this.ms += ms;
  }
}

const claim = (token: string, fingerprint = 'f1'): InFlightRecord => ({ state: 'in-flight', fingerprint, token });
const done = (accepted = 3, fingerprint = 'f1'): CompletedRecord => ({ state: 'completed', fingerprint, accepted });

describe('MemoryIdempotencyStore', () => {
  let clock: FakeClock;
  let store: MemoryIdempotencyStore;

  beforeEach(() => {
    clock = new FakeClock();
    store = new MemoryIdempotencyStore({ clock, maxKeys: 3 });
  });

  it('claims an unknown key, and then answers every other claim with the claim, changing nothing', async () => {
    await expect(store.claim('k', claim('a'), 1_000)).resolves.toBeUndefined();
    await expect(store.claim('k', claim('b', 'f2'), 1_000)).resolves.toEqual(claim('a'));
    await expect(store.claim('k', claim('c'), 1_000)).resolves.toEqual(claim('a'));
    await expect(store.claim('other', claim('d'), 1_000)).resolves.toBeUndefined();
  });

  it('forgets a claim after its TTL, so that a key held by a dead api is free again', async () => {
    await store.claim('k', claim('a'), 1_000);
    clock.advance(999);
    await expect(store.claim('k', claim('b'), 1_000)).resolves.toEqual(claim('a'));
    clock.advance(2);
    await expect(store.claim('k', claim('b'), 1_000)).resolves.toBeUndefined();
  });

  it('keeps the answer for its own TTL, whatever the claim TTL was', async () => {
    await store.claim('k', claim('a'), 1_000);
    await store.complete('k', done(), 60_000);
    clock.advance(59_999);
    await expect(store.claim('k', claim('b'), 1_000)).resolves.toEqual(done());
    clock.advance(2);
    await expect(store.claim('k', claim('b'), 1_000)).resolves.toBeUndefined();
  });

  it('releases a claim only for its holder, and never an answer', async () => {
    await store.claim('k', claim('a'), 1_000);
    await store.release('k', claim('someone else'));
    await expect(store.claim('k', claim('b'), 1_000)).resolves.toEqual(claim('a'));
    await store.release('k', claim('a'));
    await expect(store.claim('k', claim('b'), 1_000)).resolves.toBeUndefined();

    await store.complete('k', done(), 60_000);
    await store.release('k', claim('b'));
    await expect(store.claim('k', claim('c'), 1_000)).resolves.toEqual(done());
  });

  it('holds at most maxKeys keys, forgetting the least recently used first', async () => {
    for (const key of ['a', 'b', 'c']) await store.claim(key, claim(key), 60_000);
    await store.claim('a', claim('again'), 60_000); // touches a
    await store.claim('d', claim('d'), 60_000);
    expect(store.size).toBe(3);
    await expect(store.claim('b', claim('b2'), 60_000)).resolves.toBeUndefined();
    await expect(store.claim('a', claim('a2'), 60_000)).resolves.toEqual(claim('a'));
  });
});

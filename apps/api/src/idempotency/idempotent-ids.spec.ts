import { IdempotentIds } from './idempotent-ids';

const UUID_V8 = /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('IdempotentIds', () => {
  const ids = new IdempotentIds('order-42', 'f'.repeat(64));

  it('makes RFC 9562 version 8 UUIDs', () => {
    expect(ids.entryId(0)).toMatch(UUID_V8);
    expect(ids.entryId(2 ** 32 - 1)).toMatch(UUID_V8);
    expect(ids.messageId(1023, 5)).toMatch(UUID_V8);
  });

  it('gives the same ids for the same key and body, in any instance', () => {
    const again = new IdempotentIds('order-42', 'f'.repeat(64));
    expect(again.entryIds(100)).toEqual(ids.entryIds(100));
    expect(again.messageId(3, 1)).toBe(ids.messageId(3, 1));
  });

  it('gives other ids for another key or another body', () => {
    const otherKey = new IdempotentIds('order-43', 'f'.repeat(64));
    const otherBody = new IdempotentIds('order-42', 'e'.repeat(64));
    const all = [...ids.entryIds(50), ...otherKey.entryIds(50), ...otherBody.entryIds(50)];
    expect(new Set(all).size).toBe(150);
  });

  it('gives every entry, and every message of every shard, an id of its own', () => {
    expect(new Set(ids.entryIds(10_000)).size).toBe(10_000);
    const messageIds: string[] = [];
    for (let shard = 0; shard < 1024; shard += 97)
      for (let part = 0; part < 40; part++) messageIds.push(ids.messageId(shard, part));
    expect(new Set(messageIds).size).toBe(messageIds.length);
    expect(ids.entryIds(10).some((id) => messageIds.includes(id))).toBe(false);
  });

  it('refuses a counter that does not fit in 32 bits', () => {
    expect(() => ids.entryId(2 ** 32)).toThrow(RangeError);
    expect(() => ids.entryId(-1)).toThrow(RangeError);
  });
});

import { BatchBuffer } from './batch-buffer';

function makeBatch(size = 5, flushMs = 1000) {
  let now = 0;
  const batch = new BatchBuffer<number>({ size, flushMs }, () => now);
  return { batch, advance: (ms: number) => (now += ms) };
}

describe('BatchBuffer', () => {
  it('refuses a size below 1 and a flush interval that is not positive', () => {
    expect(() => new BatchBuffer({ size: 0, flushMs: 1 })).toThrow(RangeError);
    expect(() => new BatchBuffer({ size: 5, flushMs: 0 })).toThrow(RangeError);
  });

  it('is due as soon as a full batch waits, and takes exactly one batch, oldest first', () => {
    const { batch } = makeBatch(5);
    batch.add([1, 2, 3, 4]);
    expect(batch.isDue()).toBe(false);
    expect(batch.take()).toEqual([]);
    batch.add([5, 6, 7]);
    expect(batch.isDue()).toBe(true);
    expect(batch.take()).toEqual([1, 2, 3, 4, 5]);
    expect(batch.length).toBe(2);
    expect(batch.isDue()).toBe(false);
  });

  it('makes a partial batch due once its oldest entry has waited flushMs', () => {
    const { batch, advance } = makeBatch(5, 1000);
    batch.add([1]);
    advance(600);
    batch.add([2]);
    expect(batch.msUntilDue()).toBe(400);
    advance(399);
    expect(batch.isDue()).toBe(false);
    advance(1);
    expect(batch.take()).toEqual([1, 2]);
    expect(batch.msUntilDue()).toBeUndefined();
  });

  it('measures age from the oldest entry left after a take', () => {
    const { batch, advance } = makeBatch(2, 1000);
    batch.add([1, 2]);
    advance(500);
    batch.add([3]);
    expect(batch.take()).toEqual([1, 2]);
    expect(batch.msUntilDue()).toBe(1000);
  });

  it('counts the age of entries added after the buffer was emptied from their own arrival', () => {
    const { batch, advance } = makeBatch(5, 1000);
    batch.add([1, 2]);
    batch.take(true);
    advance(300);
    batch.add([3]);
    expect(batch.msUntilDue()).toBe(1000);
  });

  it('takes any partial batch when forced (shutdown)', () => {
    const { batch } = makeBatch(5);
    batch.add([1, 2]);
    expect(batch.take(true)).toEqual([1, 2]);
    expect(batch.take(true)).toEqual([]);
  });

  it('never hands out an entry twice or loses one over many takes', () => {
    const { batch } = makeBatch(7);
    const all = Array.from({ length: 10_000 }, (_, i) => i);
    for (let i = 0; i < all.length; i += 333) batch.add(all.slice(i, i + 333));
    const seen: number[] = [];
    while (batch.length > 0) seen.push(...batch.take(true));
    expect(seen).toEqual(all);
  });

  it('puts failed entries back in front, due at once', () => {
    const { batch } = makeBatch(3);
    batch.add([1, 2, 3, 4]);
    const taken = batch.take();
    batch.putBack(taken);
    expect(batch.length).toBe(4);
    expect(batch.take()).toEqual([1, 2, 3]);
    expect(batch.isDue()).toBe(false);
    batch.putBack([9]);
    expect(batch.isDue()).toBe(true);
    expect(batch.take()).toEqual([9, 4]);
  });

  it('discards the entries that match and keeps the order of the rest', () => {
    const { batch } = makeBatch(10);
    batch.add([1, 2, 3, 4, 5, 6]);
    batch.take(true);
    batch.add([7, 8, 9]);
    expect(batch.discard((n) => n % 2 === 0)).toBe(1);
    expect(batch.take(true)).toEqual([7, 9]);
  });

  it('is never due when empty, not even forced: a shutdown writes no empty batch file', () => {
    const { batch } = makeBatch(1);
    expect(batch.isDue(true)).toBe(false);
    batch.add([1]);
    batch.take();
    expect(batch.isDue(true)).toBe(false);
  });

  it("keeps each waiting entry's own age after a put-back", () => {
    const { batch, advance } = makeBatch(2, 100);
    batch.add([1]);
    advance(10);
    batch.add([2]);
    advance(10);
    batch.add([3]);
    const taken = batch.take();
    advance(10);
    batch.putBack(taken);
    expect(batch.take()).toEqual([1, 2]);
    // 3 arrived at 20 and it is now 30: due in 90 ms, not counted from an earlier entry's arrival.
    expect(batch.msUntilDue()).toBe(90);
  });

  it("keeps each kept entry's own age after a discard", () => {
    const { batch, advance } = makeBatch(10, 100);
    batch.add([1]);
    advance(50);
    batch.add([2]);
    batch.discard((n) => n === 1);
    expect(batch.msUntilDue()).toBe(100);
    advance(99);
    expect(batch.isDue()).toBe(false);
    advance(1);
    expect(batch.take()).toEqual([2]);
  });

  it('keeps order and ages across the compaction of a long-lived buffer', () => {
    const { batch, advance } = makeBatch(10, 1000);
    const all = Array.from({ length: 3000 }, (_, i) => i);
    batch.add(all.slice(0, 2000));
    const seen: number[] = [];
    for (let i = 0; i < 150; i++) seen.push(...batch.take());
    advance(400);
    batch.add(all.slice(2000));
    const failed = batch.take();
    batch.putBack(failed);
    // 1,500 taken, then 500 old entries (ages 400 ms) and 1,000 new ones wait behind the put-back.
    while (batch.length > 1000) seen.push(...batch.take());
    expect(batch.msUntilDue()).toBe(1000);
    while (batch.length > 0) seen.push(...batch.take(true));
    expect(seen).toEqual(all);
  });
});

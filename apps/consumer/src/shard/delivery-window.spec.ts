import { DeliveryWindow } from './delivery-window';

const KiB = 1024;
const MiB = 1024 * KiB;
/** As a shard with PREFETCH 200 has it: 200 of the api's largest multi-entry messages. */
const BUDGET = 200 * 64 * KiB;

function window() {
  return new DeliveryWindow({
    budget: BUDGET,
    bytesPerEntry: 0,
    maxPrefetch: 200,
    assumedLargest: MiB,
    largeBytes: 64 * KiB,
  });
}

describe('DeliveryWindow', () => {
  it('starts a first consumer with room for the assumed largest message, and grows to PREFETCH once that many proved small', () => {
    const w = window();
    expect(w.startConsumer()).toBe(12);
    // Not a full hand yet: the consumer may still grow.
    expect(w.fullHand).toBe(200);
    for (let i = 0; i < 11; i++) expect(w.received(3 * KiB)).toBe('consume');
    expect(w.received(3 * KiB)).toBe('grow');
    expect(w.startConsumer()).toBe(200);
    expect(w.received(64 * KiB)).toBe('consume');
    expect(w.fullHand).toBe(200);
    // At PREFETCH it never restarts again, however many small deliveries come.
    for (let i = 0; i < 1000; i++) {
      expect(w.received(2 * KiB)).toBe('consume');
      w.release(2 * KiB);
    }
  });

  it("holds for messages of the api's usual size only once the budget is passed, not for what the prefetch could bring", () => {
    const w = window();
    w.startConsumer();
    for (let i = 0; i < 12; i++) w.received(KiB);
    expect(w.startConsumer()).toBe(200);
    // 200 of 64 KiB would be the whole 12.5 MiB: not a reason to stop while little is held.
    for (let i = 0; i < 199; i++) expect(w.received(64 * KiB)).toBe('consume');
    expect(w.received(64 * KiB)).toBe('hold');
  });

  it('a consumer whose deliveries fill its prefetch without room to grow has a full hand at that prefetch; held off, at 1', () => {
    const w = window();
    expect(w.startConsumer()).toBe(12);
    for (let i = 0; i < 12; i++) expect(w.received(MiB)).toBe('consume');
    expect(w.fullHand).toBe(12);
    expect(w.received(MiB)).toBe('hold');
    expect(w.fullHand).toBe(1);
  });

  it('restarts only to at least double its prefetch (or reach PREFETCH): 64 KiB messages beside what is held stay at 198', () => {
    const w = window();
    w.startConsumer();
    for (let i = 0; i < 11; i++) w.received(3 * KiB);
    expect(w.received(64 * KiB)).toBe('grow');
    expect(w.startConsumer()).toBe(198);
    for (let i = 0; i < 198; i++) expect(w.received(64 * KiB)).toBe('consume');
    expect(w.heldBytes).toBeLessThanOrEqual(BUDGET);
  });

  it('grows only as far as its deliveries allow: 100 KiB messages get what fits in 12.5 MiB beside the 1.2 MiB held', () => {
    const w = window();
    w.startConsumer();
    for (let i = 0; i < 11; i++) expect(w.received(100 * KiB)).toBe('consume');
    expect(w.received(100 * KiB)).toBe('grow');
    expect(w.startConsumer()).toBe(116);
    for (let i = 0; i < 12; i++) w.release(100 * KiB);
    expect(w.heldBytes).toBe(0);
  });

  it('holds a consumer whose prefetch is too large for a delivery, until half the budget is settled, then allows for that size', () => {
    const w = window();
    w.startConsumer();
    for (let i = 0; i < 12; i++) w.received(KiB);
    expect(w.startConsumer()).toBe(200);
    // 200 of these would be 400 MiB.
    expect(w.received(2 * MiB)).toBe('hold');
    expect(w.isHolding).toBe(true);
    // Those the broker had sent before the cancel arrive all the same.
    for (let i = 0; i < 4; i++) expect(w.received(2 * MiB)).toBe('hold');
    expect(w.heldBytes).toBe(12 * KiB + 10 * MiB);
    expect(w.release(2 * MiB)).toBe(false);
    expect(w.release(2 * MiB)).toBe(true);
    expect(w.isHolding).toBe(false);
    expect(w.heldBytes).toBe(12 * KiB + 6 * MiB);
    // Room for 3 more of 2 MiB beside the 6 MiB held: the budget is kept.
    expect(w.startConsumer()).toBe(3);
  });

  it('holds when what is held passes the budget, whatever the prefetch said', () => {
    const w = window();
    w.startConsumer();
    for (let i = 0; i < 12; i++) w.received(60 * KiB);
    w.startConsumer();
    for (let i = 0; i < 199; i++) w.received(60 * KiB);
    expect(w.received(1000 * KiB)).toBe('hold');
    expect(w.release(60 * KiB)).toBe(false);
  });

  it('gives a message larger than the budget a consumer of its own: prefetch 1', () => {
    const w = window();
    w.startConsumer();
    expect(w.received(20 * MiB)).toBe('hold');
    expect(w.release(20 * MiB)).toBe(true);
    expect(w.startConsumer()).toBe(1);
  });

  it('counts each entry beside the bytes, and calls a delivery large by its bytes only', () => {
    const w = new DeliveryWindow({
      budget: MiB,
      bytesPerEntry: KiB,
      maxPrefetch: 200,
      assumedLargest: MiB,
      largeBytes: 64 * KiB,
    });
    expect(w.startConsumer()).toBe(1);
    // 10 KiB of bytes, 250 entries: 260 KiB held, yet not a large (single-entry) message to hold off for.
    expect(w.received(10 * KiB, 250)).toBe('grow');
    expect(w.heldBytes).toBe(260 * KiB);
    expect(w.startConsumer()).toBe(2);
    expect(w.received(10 * KiB, 250)).toBe('consume');
    expect(w.received(10 * KiB, 250)).toBe('consume');
    expect(w.received(10 * KiB, 250)).toBe('hold');
    // 1,040 KiB held: back under half the budget after three are written.
    expect(w.release(10 * KiB, 250)).toBe(false);
    expect(w.release(10 * KiB, 250)).toBe(false);
    expect(w.release(10 * KiB, 250)).toBe(true);
    expect(w.heldBytes).toBe(260 * KiB);
  });
});

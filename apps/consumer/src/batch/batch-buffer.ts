export interface BatchBufferOptions {
  /** Entries per batch. */
  size: number;
  /** A partial batch is due once its oldest entry has waited this long. */
  flushMs: number;
}

export type Clock = () => number;

/**
 * The buffer a shard's worker pool owns and its workers take their batches from, in arrival order.
 * Single-threaded JavaScript makes `take()` atomic: no entry is taken twice or left behind.
 */
export class BatchBuffer<T> {
  private items: T[] = [];
  private arrivedAt: number[] = [];
  // Taken entries are skipped by moving `head`; the arrays are compacted now and then, so a
  // take costs O(batch), not O(buffer).
  private head = 0;

  constructor(
    private readonly options: BatchBufferOptions,
    private readonly clock: Clock = Date.now,
  ) {
    if (!Number.isInteger(options.size) || options.size < 1) {
      throw new RangeError(`batch size must be a whole number of at least 1, got ${options.size}`);
    }
    if (!(options.flushMs > 0)) {
      throw new RangeError(`batch flush interval must be positive, got ${options.flushMs}`);
    }
  }

  /** Entries buffered and not yet taken. */
  get length(): number {
    return this.items.length - this.head;
  }

  /** Whether at least one full batch is waiting. */
  hasFullBatch(): boolean {
    return this.length >= this.options.size;
  }

  /** Appends entries; they become due for a partial flush `flushMs` from now. */
  add(items: readonly T[]): void {
    const now = this.clock();
    for (const item of items) {
      this.items.push(item);
      this.arrivedAt.push(now);
    }
  }

  /** Whether `take()` would return a batch: a full one, an overdue partial one, or any when forced. */
  isDue(force = false): boolean {
    if (this.length === 0) return false;
    return force || this.hasFullBatch() || this.msUntilDue() === 0;
  }

  /** Milliseconds until the oldest entry is due, 0 when it is; undefined when empty. */
  msUntilDue(): number | undefined {
    if (this.length === 0) return undefined;
    return Math.max(0, this.arrivedAt[this.head] + this.options.flushMs - this.clock());
  }

  /** Removes and returns the next batch (at most `size` entries, oldest first); [] when not due. */
  take(force = false): T[] {
    if (!this.isDue(force)) return [];
    const end = Math.min(this.head + this.options.size, this.items.length);
    const batch = this.items.slice(this.head, end);
    this.head = end;
    this.compact();
    return batch;
  }

  /** Returns entries whose write failed to the front, due at once, so they are written next. */
  putBack(items: readonly T[]): void {
    if (items.length === 0) return;
    const due = this.clock() - this.options.flushMs;
    this.items = [...items, ...this.items.slice(this.head)];
    this.arrivedAt = [...items.map(() => due), ...this.arrivedAt.slice(this.head)];
    this.head = 0;
  }

  /** Drops every buffered entry that matches; returns how many were dropped. */
  discard(predicate: (item: T) => boolean): number {
    const keptItems: T[] = [];
    const keptArrivals: number[] = [];
    for (let i = this.head; i < this.items.length; i++) {
      if (predicate(this.items[i])) continue;
      keptItems.push(this.items[i]);
      keptArrivals.push(this.arrivedAt[i]);
    }
    const dropped = this.length - keptItems.length;
    this.items = keptItems;
    this.arrivedAt = keptArrivals;
    this.head = 0;
    return dropped;
  }

  private compact(): void {
    if (this.head === this.items.length) {
      this.items = [];
      this.arrivedAt = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.arrivedAt = this.arrivedAt.slice(this.head);
      this.head = 0;
    }
  }
}

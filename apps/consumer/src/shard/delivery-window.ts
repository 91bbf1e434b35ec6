/**
 * What the shard's consumer does after a delivery: keep consuming, restart at once with a larger
 * prefetch (`grow`), or stop until enough of what it holds is written (`hold`).
 */
export type WindowVerdict = 'consume' | 'grow' | 'hold';

export interface DeliveryWindowOptions {
  /** The most bytes of deliveries the shard should hold at once. */
  budget: number;
  /**
   * What each decoded entry costs beside its bytes while the shard holds it (its objects, its line,
   * its claim): a delivery counts as its size plus this per entry.
   */
  bytesPerEntry: number;
  /** PREFETCH: the most deliveries a consumer is ever given. */
  maxPrefetch: number;
  /** The size a first consumer assumes its deliveries may have, before it has seen any. */
  assumedLargest: number;
  /**
   * Deliveries over this size (the api's single-entry messages) hold the consumer off as soon as
   * its prefetch of them could pass the budget; smaller ones only once the budget is passed.
   */
  largeBytes: number;
}

/**
 * Keeps the bytes a shard holds near a budget although RabbitMQ's prefetch counts deliveries, not
 * bytes (docs/consumer-memory.md). A consumer is started with the prefetch the budget has room for,
 * counting the largest delivery in view: at first an assumed size, then what deliveries showed. A
 * consumer whose deliveries all proved small is restarted at once with PREFETCH (`grow`); a
 * delivery too large for the consumer's prefetch, or the budget overrun, stops the consumer until
 * the shard holds at most half the budget (`hold`, then `release()` says when).
 */
export class DeliveryWindow {
  /**
   * What the deliveries in hand cost (their bytes and entries, see cost()), from every consumer of
   * the shard, until each is settled.
   */
  private held = 0;
  /** The largest delivery the next consumer's prefetch must allow for. */
  private largest: number;
  /** The running consumer's prefetch, and what it was sent. */
  private prefetch = 0;
  private seen = 0;
  private largestSeen = 0;
  private holding = false;
  /** The running consumer's prefetch is what its deliveries allow: it will not grow. */
  private settled = false;

  constructor(private readonly options: DeliveryWindowOptions) {
    this.largest = options.assumedLargest;
  }

  /** What is in hand, in bytes: the deliveries' bytes plus their entries' cost. */
  get heldBytes(): number {
    return this.held;
  }

  /**
   * How many deliveries can be in hand before no more can come: the running consumer's prefetch once
   * its deliveries showed it will not grow (or 1 while held off), else PREFETCH. The worker pool
   * then writes a partial batch rather than wait for BATCH_FLUSH_MS.
   */
  get fullHand(): number {
    if (this.holding) return 1;
    return this.settled ? this.prefetch : this.options.maxPrefetch;
  }

  /** Whether the consumer is stopped until the shard holds less. */
  get isHolding(): boolean {
    return this.holding;
  }

  /**
   * The prefetch for a consumer starting now (it is the running one from here on): as many of the
   * largest deliveries in view as fit in the budget beside what the shard holds already.
   */
  startConsumer(): number {
    this.prefetch = this.room(this.largest);
    this.settled = this.prefetch === this.options.maxPrefetch;
    this.seen = 0;
    this.largestSeen = 0;
    return this.prefetch;
  }

  /** What a delivery of `bytes` and `entries` counts for in the budget. */
  private cost(bytes: number, entries: number): number {
    return bytes + entries * this.options.bytesPerEntry;
  }

  /** A delivery of `bytes` arrived, `entries` of them decoded (0 for one that cannot be). */
  received(bytes: number, entries = 0): WindowVerdict {
    const { budget, maxPrefetch } = this.options;
    const cost = this.cost(bytes, entries);
    this.held += cost;
    this.seen++;
    this.largestSeen = Math.max(this.largestSeen, cost);
    if (this.holding) return 'hold';
    if (this.held > budget || (bytes > this.options.largeBytes && cost * this.prefetch > budget)) {
      // Over the budget, or the consumer may be sent `prefetch` deliveries of this size: far more.
      this.largest = Math.max(cost, this.largestSeen);
      this.holding = true;
      return 'hold';
    }
    // Restarting costs a cancel and a consume: only for at least twice the prefetch (or PREFETCH).
    if (!this.settled && this.seen >= this.prefetch) {
      if (this.room(this.largestSeen) >= Math.min(maxPrefetch, 2 * this.prefetch)) {
        this.largest = this.largestSeen;
        return 'grow';
      }
      this.settled = true;
    }
    return 'consume';
  }

  /** How many deliveries of `size` fit in the budget beside what is held: 1 to PREFETCH. */
  private room(size: number): number {
    const { budget, maxPrefetch } = this.options;
    return Math.max(1, Math.min(maxPrefetch, Math.floor((budget - this.held) / Math.max(1, size))));
  }

  /** A delivery received with `bytes` and `entries` was settled (or given up); true when a held consumer may start again. */
  release(bytes: number, entries = 0): boolean {
    this.held -= this.cost(bytes, entries);
    if (!this.holding || this.held > this.options.budget / 2) return false;
    this.holding = false;
    return true;
  }
}

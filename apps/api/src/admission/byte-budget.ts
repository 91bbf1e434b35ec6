interface Waiter {
  bytes: number;
  grant: (release: () => void) => void;
}

/**
 * A number of bytes shared by the requests in progress, handed out first come, first served: a
 * request waits while earlier ones hold the budget, and no later request overtakes a waiting one
 * (so a large request is never starved by a stream of small ones). A request larger than the
 * whole budget is let in alone.
 */
export class ByteBudget {
  private used = 0;
  private readonly queue: Waiter[] = [];

  constructor(readonly capacity: number) {
    if (!(capacity > 0)) throw new RangeError(`a byte budget must be positive, got ${capacity}`);
  }

  /** Bytes held by the requests let in. */
  get inUse(): number {
    return this.used;
  }

  /** Requests waiting for their turn. */
  get waiting(): number {
    return this.queue.length;
  }

  /** The function that gives `bytes` back, when they are granted now; undefined when they must wait. */
  tryTake(bytes: number): (() => void) | undefined {
    const wanted = Math.min(bytes, this.capacity);
    return this.queue.length === 0 && this.fits(wanted) ? this.grant(wanted) : undefined;
  }

  /**
   * Resolves with the function that gives `bytes` back once they are granted, or with undefined
   * when `signal` aborts first (the wait's deadline, or the client gone). Call the release once.
   */
  take(bytes: number, signal: AbortSignal): Promise<(() => void) | undefined> {
    const now = this.tryTake(bytes);
    if (now !== undefined) return Promise.resolve(now);
    if (signal.aborted) return Promise.resolve(undefined);
    const wanted = Math.min(bytes, this.capacity);
    return new Promise((resolve) => {
      const waiter: Waiter = { bytes: wanted, grant: resolve };
      const abandon = () => {
        const index = this.queue.indexOf(waiter);
        if (index === -1) return;
        this.queue.splice(index, 1);
        resolve(undefined);
        // The one that left may have been what held the others back.
        this.dispatch();
      };
      waiter.grant = (release) => {
        signal.removeEventListener('abort', abandon);
        resolve(release);
      };
      signal.addEventListener('abort', abandon, { once: true });
      this.queue.push(waiter);
    });
  }

  private fits(bytes: number): boolean {
    return this.used === 0 || this.used + bytes <= this.capacity;
  }

  private grant(bytes: number): () => void {
    this.used += bytes;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.used -= bytes;
      this.dispatch();
    };
  }

  private dispatch(): void {
    while (this.queue.length > 0 && this.fits(this.queue[0].bytes)) {
      const next = this.queue.shift() as Waiter;
      next.grant(this.grant(next.bytes));
    }
  }
}

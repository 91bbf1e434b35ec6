/**
 * Lets at most `limit` batch writes touch the disk at once in this process, first come first
 * served. A write whose signal aborts while it waits (its worker timed out) leaves the line having
 * done no I/O. Without the gate, thousands of workers' writes queued behind libuv's 4 threads, each
 * outlived WORKER_TIMEOUT_MS, and the abandoned writes' queued operations kept the queue from ever
 * draining: nothing was written at all.
 */
export class WriteGate {
  private active = 0;
  /** Writes waiting for their turn, oldest first (a Set keeps insertion order and deletes in O(1)). */
  private readonly waiting = new Set<() => void>();

  constructor(private readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1)
      throw new RangeError(`the write gate needs a limit of at least 1, got ${limit}`);
  }

  /** Resolves true once the caller may write (it must call leave() after), false if `signal` aborted first. */
  enter(signal?: AbortSignal): Promise<boolean> {
    if (signal?.aborted) return Promise.resolve(false);
    if (this.active < this.limit) {
      this.active++;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const onAbort = () => {
        this.waiting.delete(admit);
        resolve(false);
      };
      // leave() hands its place over: `active` stays as it is.
      const admit = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve(true);
      };
      this.waiting.add(admit);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Ends a write that enter() admitted; the longest waiting one goes next. */
  leave(): void {
    const next = this.waiting.values().next();
    if (next.done) {
      this.active--;
      return;
    }
    this.waiting.delete(next.value);
    next.value();
  }

  /** Writes under way and writes waiting, for tests and metrics. */
  get load(): { active: number; waiting: number } {
    return { active: this.active, waiting: this.waiting.size };
  }
}

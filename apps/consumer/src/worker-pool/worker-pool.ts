import { Logger } from '@nestjs/common';
import { describeError, logEvent } from '@app/observability';
import { BatchBuffer } from '../batch/batch-buffer';
import type {
  AddOutcome,
  BatchWriter,
  RetireReason,
  WorkerPoolHooks,
  WorkerPoolOptions,
  WorkerRecord,
} from './worker-pool.types';

interface Worker {
  id: string;
  processed: number;
  state: 'idle' | 'busy' | 'retired';
  reason: RetireReason | null;
  idleTimer?: NodeJS.Timeout;
  /**
   * Aborts the worker's write when it times out. One per worker, not per batch (an
   * AbortController costs more than the rest of a small batch's bookkeeping): a worker that
   * times out is retired, so its controller aborts at most one write.
   */
  controller: AbortController;
}

/** One `add()` call: it resolves once its last item is written, or as soon as one is dropped. */
interface Ticket {
  remaining: number;
  settled: boolean;
  resolve(outcome: AddOutcome): void;
}

/** An item in the buffer, with the add() it came from. */
interface Slot<T> {
  item: T;
  ticket: Ticket;
}

interface Job {
  /** The writer passed its point of no return. */
  committed: boolean;
  /** A timeout took the items back; whatever the writer does later is ignored. */
  reclaimed: boolean;
}

/** commit() of a batch a timeout already took back: the writer must not publish it (another worker writes it). */
export class BatchReclaimedError extends Error {
  constructor(workerId: string) {
    super(`worker ${workerId} timed out before its commit; its batch went back to the buffer`);
    this.name = BatchReclaimedError.name;
  }
}

export const DEFAULT_POOL_OPTIONS = {
  idleMs: 30_000,
  reportEveryMs: 10_000,
  historyLimit: 100,
  retryDelayMs: { initial: 100, max: 5_000 },
} satisfies Partial<WorkerPoolOptions>;

/**
 * The workers of one shard and the buffer they take their batches from, which the pool alone
 * owns. `add()` buffers items and resolves once all of them are in a complete file; whenever a
 * batch is due, an idle worker takes it, or a new one is started while full batches wait and the
 * pool is below `max`. Workers idle for `idleMs` retire down to `min`; a worker whose write
 * outlives `timeoutMs` is retired and replaced, and its batch goes back to the front of the buffer.
 */
export class WorkerPool<T> {
  private readonly logger: Logger;
  private readonly live = new Map<string, Worker>();
  /** Idle workers, most recently freed last: reusing it lets the others idle long enough to retire. */
  private readonly idle: Worker[] = [];
  /** Retired workers, oldest first; kept as objects so a late committed write still counts. */
  private readonly retired: Worker[] = [];
  private readonly idleWaiters: Array<() => void> = [];
  private readonly buffer: BatchBuffer<Slot<T>>;
  /** Each running write's timeout, cleared by close() with the other timers. */
  private readonly writeTimers = new Set<NodeJS.Timeout>();
  /** add() calls not yet settled. */
  private pendingAdds = 0;
  private nextNumber = 1;
  private inFlight = 0;
  private failures = 0;
  private retryAt = 0;
  private draining = false;
  private closed = false;
  private writtenSinceReport = false;
  private wakeTimer?: NodeJS.Timeout;
  /** When wakeTimer fires (epoch ms). */
  private wakeAt = 0;
  private reportTimer?: NodeJS.Timeout;

  constructor(
    private readonly options: WorkerPoolOptions,
    private readonly writer: BatchWriter<T>,
    private readonly hooks: WorkerPoolHooks<T> = {},
  ) {
    const { min, max, timeoutMs, idleMs } = options;
    if (!Number.isInteger(min) || min < 1) throw new RangeError(`min workers must be at least 1, got ${min}`);
    if (!Number.isInteger(max) || max < min) throw new RangeError(`max workers (${max}) must be at least min (${min})`);
    if (!(timeoutMs > 0) || !(idleMs > 0)) throw new RangeError('worker timeout and idle time must be positive');
    this.buffer = new BatchBuffer(options.batch);
    this.logger = new Logger(`WorkerPool shard ${options.shard}`);
  }

  /** Starts `min` workers and the periodic history report. */
  start(): void {
    for (let i = 0; i < this.options.min; i++) this.release(this.spawn());
    this.pump();
    this.reportTimer = setInterval(() => {
      if (!this.writtenSinceReport) return;
      this.writtenSinceReport = false;
      this.logHistory('worker history');
    }, this.options.reportEveryMs);
    this.reportTimer.unref();
  }

  /**
   * Buffers `items` for the workers. Resolves 'written' once every one of them is in a complete
   * file, or 'discarded' as soon as one is dropped by discard() or close() (never rejects).
   */
  add(items: readonly T[]): Promise<AddOutcome> {
    if (this.closed) return Promise.resolve('discarded');
    if (items.length === 0) return Promise.resolve('written');
    return new Promise((resolve) => {
      const ticket: Ticket = { remaining: items.length, settled: false, resolve };
      this.pendingAdds++;
      this.buffer.add(items.map((item) => ({ item, ticket })));
      this.pump();
    });
  }

  /** Drops every buffered item that matches (a write under way is not stopped); returns how many. */
  discard(predicate: (item: T) => boolean): number {
    const dropped = this.buffer.discard((slot) => {
      if (!predicate(slot.item)) return false;
      this.settleTicket(slot.ticket, 'discarded');
      return true;
    });
    this.pump();
    return dropped;
  }

  /** Items buffered and not yet handed to a worker. */
  get buffered(): number {
    return this.buffer.length;
  }

  /** Live workers (idle or busy). */
  get size(): number {
    return this.live.size;
  }

  /** Live workers first, then the retired ones kept in the history. */
  history(): WorkerRecord[] {
    return [...this.live.values(), ...this.retired].map(({ id, processed, state, reason }) => ({
      id,
      processed,
      state: state === 'retired' ? ('retired' as const) : ('active' as const),
      reason,
    }));
  }

  /** onIdle(): resolves when nothing is buffered and no write is in flight (all work done), or on close(). */
  onIdle(): Promise<void> {
    if (this.closed || this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Writes every buffered entry, partial batches included, and resolves once all writes are done. */
  drain(): Promise<void> {
    this.draining = true;
    this.pump();
    return this.onIdle();
  }

  /**
   * Retires every live worker (reason `shutdown`), stops every timer, drops what is buffered (its
   * add() calls resolve 'discarded'), releases onIdle() waiters and logs the final history. A write
   * under way still completes; should it fail, its add() calls resolve 'discarded' too. Idempotent.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.wakeTimer);
    clearInterval(this.reportTimer);
    for (const timer of this.writeTimers) clearTimeout(timer);
    this.writeTimers.clear();
    for (const worker of [...this.live.values()]) this.retire(worker, 'shutdown');
    this.buffer.discard((slot) => {
      this.settleTicket(slot.ticket, 'discarded');
      return true;
    });
    for (const resolve of this.idleWaiters.splice(0)) resolve();
    this.logHistory('final worker history');
  }

  private isIdle(): boolean {
    return this.buffer.length === 0 && this.inFlight === 0;
  }

  private settleTicket(ticket: Ticket, outcome: AddOutcome): void {
    if (ticket.settled) return;
    ticket.settled = true;
    this.pendingAdds--;
    ticket.resolve(outcome);
  }

  /** A partial batch goes early only with no write in flight: a write under way frees room when it is acknowledged. */
  private flushEarly(): boolean {
    const limit = this.options.flushAtPendingAdds;
    return this.inFlight === 0 && limit !== undefined && this.pendingAdds >= limit();
  }

  private pump(): void {
    if (this.closed) return;
    const now = Date.now();
    if (now < this.retryAt) {
      this.wakeIn(this.retryAt - now);
      return;
    }
    for (;;) {
      const force = this.draining || this.flushEarly();
      if (!this.buffer.isDue(force)) break;
      const worker = this.idle.pop() ?? this.grow();
      if (worker === undefined) break;
      this.dispatch(worker, this.buffer.take(force));
    }
    // Empty, or due now and waiting for a worker (a finished write pumps again): no timer.
    const due = this.buffer.msUntilDue() ?? 0;
    if (due > 0) this.wakeIn(due);
    this.settleIdleWaiters();
  }

  /** A new worker, only while full batches wait for one and the pool is below max. */
  private grow(): Worker | undefined {
    if (!this.buffer.hasFullBatch() || this.live.size >= this.options.max) return undefined;
    const worker = this.spawn();
    this.logger.log(
      `worker ${worker.id} started: full batches are waiting (${this.live.size} of ${this.options.max} workers)`,
    );
    return worker;
  }

  private dispatch(worker: Worker, slots: Slot<T>[]): void {
    clearTimeout(worker.idleTimer);
    worker.state = 'busy';
    this.inFlight++;
    const startedAt = Date.now();
    const job: Job = { committed: false, reclaimed: false };
    const { controller } = worker;
    const timer: NodeJS.Timeout = setTimeout(
      () => this.onTimeout(worker, slots, job, controller, timer),
      this.options.timeoutMs,
    );
    this.writeTimers.add(timer);
    // Mapped once: the writer and the `written` hook get the same array.
    const items = slots.map((slot) => slot.item);
    const write = (async () =>
      this.writer({
        workerId: worker.id,
        items,
        signal: controller.signal,
        commit: () => {
          // The writer may have awaited after its last look at the signal (the ledger record):
          // a batch already back in the buffer must not also be renamed into place.
          if (job.reclaimed) throw new BatchReclaimedError(worker.id);
          job.committed = true;
        },
        started: () => {
          // Only while the timer is armed: refresh() would revive one that fired or was cleared.
          if (this.writeTimers.has(timer)) timer.refresh();
        },
      }))();
    write
      .then(
        () => this.settle(worker, slots, items, job, timer, startedAt),
        (error: unknown) => this.settle(worker, slots, items, job, timer, startedAt, error),
      )
      .catch((error: unknown) => this.logger.error(`settling a batch of worker ${worker.id}: ${describeError(error)}`));
  }

  private settle(
    worker: Worker,
    slots: Slot<T>[],
    items: readonly T[],
    job: Job,
    timer: NodeJS.Timeout,
    startedAt: number,
    error?: unknown,
  ): void {
    clearTimeout(timer);
    this.writeTimers.delete(timer);
    // A reclaimed job was already counted out and its items are back in the buffer.
    if (job.reclaimed) return;
    this.inFlight--;
    if (error === undefined) {
      worker.processed += slots.length;
      this.failures = 0;
      this.writtenSinceReport = true;
      this.onWritten(worker, slots, items, Date.now() - startedAt);
    } else if (this.closed) {
      // Nothing takes the batch again after close(): its add() calls end as close() ends the others.
      for (const { ticket } of slots) this.settleTicket(ticket, 'discarded');
    } else {
      this.buffer.putBack(slots);
      this.failures++;
      const { initial, max } = this.options.retryDelayMs;
      const delay = Math.min(max, initial * 2 ** (this.failures - 1));
      this.retryAt = Date.now() + delay;
      this.logger.error(
        `worker ${worker.id} could not write ${slots.length} entries (${describeError(error)}); ` +
          `they go back to the buffer, next try in ${delay} ms`,
      );
    }
    if (worker.state === 'busy') this.release(worker);
    this.pump();
  }

  /** An add() resolves when the last of its items is written, which may be several batches later. */
  private onWritten(worker: Worker, slots: Slot<T>[], items: readonly T[], ms: number): void {
    if (this.hooks.written !== undefined) {
      try {
        this.hooks.written(items, worker.id, ms);
      } catch (hookError) {
        this.logger.error(`after worker ${worker.id} wrote ${slots.length} entries: ${describeError(hookError)}`);
      }
    }
    for (const { ticket } of slots) {
      ticket.remaining--;
      if (ticket.remaining === 0) this.settleTicket(ticket, 'written');
    }
  }

  private onTimeout(
    worker: Worker,
    slots: Slot<T>[],
    job: Job,
    controller: AbortController,
    timer: NodeJS.Timeout,
  ): void {
    // Never after close(): close() clears every write timer.
    this.writeTimers.delete(timer);
    this.retire(worker, 'timeout');
    if (job.committed) {
      // The rename is under way: the batch completes on its own and is acknowledged then.
      this.logger.warn(`worker ${worker.id} timed out after ${this.options.timeoutMs} ms while committing; retired`);
    } else {
      job.reclaimed = true;
      this.inFlight--;
      controller.abort();
      this.buffer.putBack(slots);
      this.logger.warn(
        `worker ${worker.id} timed out after ${this.options.timeoutMs} ms writing ${slots.length} entries; ` +
          'retired, its entries go back to the buffer',
      );
    }
    const replacement = this.spawn();
    this.logger.log(`worker ${replacement.id} started in place of ${worker.id}`);
    this.release(replacement);
    this.pump();
  }

  private spawn(): Worker {
    const worker: Worker = {
      // n is never reused in a process, so the history names every worker that ever ran.
      id: `${this.options.shard}-${this.nextNumber++}`,
      processed: 0,
      state: 'idle',
      reason: null,
      controller: new AbortController(),
    };
    this.live.set(worker.id, worker);
    this.hooks.resized?.(this.live.size, { started: worker.id });
    return worker;
  }

  /** Back to the idle stack; above `min`, it retires unless work finds it within `idleMs`. */
  private release(worker: Worker): void {
    worker.state = 'idle';
    this.idle.push(worker);
    if (this.live.size > this.options.min) {
      worker.idleTimer = setTimeout(() => {
        // Work or retirement clears this timer: the worker is idle here, but others may have retired.
        if (this.live.size > this.options.min) {
          this.retire(worker, 'idle');
          this.logger.log(`worker ${worker.id} retired after ${this.options.idleMs} ms idle`);
        }
      }, this.options.idleMs);
      worker.idleTimer.unref();
    }
  }

  /** Only for a live worker: close() retires the live ones, a timeout a busy one, its idle timer an idle one. */
  private retire(worker: Worker, reason: RetireReason): void {
    clearTimeout(worker.idleTimer);
    worker.state = 'retired';
    worker.reason = reason;
    this.live.delete(worker.id);
    const index = this.idle.indexOf(worker);
    if (index !== -1) this.idle.splice(index, 1);
    this.retired.push(worker);
    for (const forgotten of this.retired.splice(0, this.retired.length - this.options.historyLimit)) {
      this.hooks.forgotten?.(forgotten.id);
    }
    this.hooks.resized?.(this.live.size, { retired: worker.id, reason });
  }

  /**
   * Runs pump() again in `ms`. A timer already set to fire no later is kept (pump() looks again
   * when it fires): pump() runs on every add and every settled write, and re-arming a timer each
   * time showed in the drain's profile.
   */
  private wakeIn(ms: number): void {
    const at = Date.now() + ms;
    if (this.wakeTimer !== undefined && this.wakeAt <= at) return;
    clearTimeout(this.wakeTimer);
    this.wakeAt = at;
    this.wakeTimer = setTimeout(() => {
      this.wakeTimer = undefined;
      this.pump();
    }, ms);
  }

  private settleIdleWaiters(): void {
    if (!this.isIdle()) return;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  private logHistory(title: string): void {
    const workers = this.history();
    const text = workers.map((w) => `${w.id} ${w.state}${w.reason ? ` (${w.reason})` : ''} ${w.processed}`).join(', ');
    this.logger.log(
      logEvent(`shard ${this.options.shard} ${title}: ${text}`, {
        event: 'worker_history',
        shard: this.options.shard,
        workers,
      }),
    );
  }
}

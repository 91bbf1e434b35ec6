import { Logger } from '@nestjs/common';
import { describeError, logEvent } from '@app/observability';
import type { SharedBatch } from '../batch/shared-batch';
import type { BatchWriter, RetireReason, WorkerPoolHooks, WorkerPoolOptions, WorkerRecord } from './worker-pool.types';

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

interface Job {
  /** The writer passed its point of no return. */
  committed: boolean;
  /** A timeout took the items back; whatever the writer does later is ignored. */
  reclaimed: boolean;
}

export const DEFAULT_POOL_OPTIONS = {
  idleMs: 30_000,
  reportEveryMs: 10_000,
  historyLimit: 100,
  retryDelayMs: { initial: 100, max: 5_000 },
} satisfies Partial<WorkerPoolOptions>;

/**
 * The workers of one shard. They share one batch: whenever a batch is due, an idle worker takes
 * it, or a new one is started while full batches wait and the pool is below `max`. Workers idle
 * for `idleMs` retire down to `min`; a worker whose write outlives `timeoutMs` is retired and
 * replaced, and its batch goes back to the front of the queue.
 */
export class WorkerPool<T> {
  private readonly logger: Logger;
  private readonly live = new Map<string, Worker>();
  /** Idle workers, most recently freed last: reusing it lets the others idle long enough to retire. */
  private readonly idle: Worker[] = [];
  /** Retired workers, oldest first; kept as objects so a late committed write still counts. */
  private readonly retired: Worker[] = [];
  private readonly idleWaiters: Array<() => void> = [];
  private nextNumber = 1;
  private inFlight = 0;
  private failures = 0;
  private retryAt = 0;
  private draining = false;
  private closed = false;
  private writtenSinceReport = false;
  private wakeTimer?: NodeJS.Timeout;
  private reportTimer?: NodeJS.Timeout;

  constructor(
    private readonly options: WorkerPoolOptions,
    private readonly batch: SharedBatch<T>,
    private readonly writer: BatchWriter<T>,
    private readonly hooks: WorkerPoolHooks<T>,
  ) {
    const { min, max, timeoutMs, idleMs } = options;
    if (!Number.isInteger(min) || min < 1) throw new RangeError(`min workers must be at least 1, got ${min}`);
    if (!Number.isInteger(max) || max < min) throw new RangeError(`max workers (${max}) must be at least min (${min})`);
    if (!(timeoutMs > 0) || !(idleMs > 0)) throw new RangeError('worker timeout and idle time must be positive');
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

  /** Entries were added to the batch: hand out whatever is due. */
  notify(): void {
    this.pump();
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

  /** onIdle(): resolves when nothing is buffered and no write is in flight (all work done). */
  onIdle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Writes every buffered entry, partial batches included, and resolves once all writes are done. */
  drain(): Promise<void> {
    this.draining = true;
    this.pump();
    return this.onIdle();
  }

  /** Retires every live worker (reason `shutdown`), stops the timers and logs the final history. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.wakeTimer);
    clearInterval(this.reportTimer);
    for (const worker of [...this.live.values()]) this.retire(worker, 'shutdown');
    this.logHistory('final worker history');
  }

  private isIdle(): boolean {
    return this.batch.length === 0 && this.inFlight === 0;
  }

  private pump(): void {
    if (this.closed) return;
    clearTimeout(this.wakeTimer);
    this.wakeTimer = undefined;
    const now = Date.now();
    if (now < this.retryAt) {
      this.wakeIn(this.retryAt - now);
      return;
    }
    for (;;) {
      // Early only with no write in flight: a write under way frees room when it is acknowledged.
      const force = this.draining || (this.inFlight === 0 && (this.hooks.flushEarly?.() ?? false));
      if (!this.batch.isDue(force)) break;
      const worker = this.idle.pop() ?? this.grow();
      if (worker === undefined) break;
      this.dispatch(worker, this.batch.take(force));
    }
    const due = this.batch.msUntilDue();
    if (due !== undefined && due > 0) this.wakeIn(due);
    this.settleIdleWaiters();
  }

  /** A new worker, only while full batches wait for one and the pool is below max. */
  private grow(): Worker | undefined {
    if (!this.batch.hasFullBatch() || this.live.size >= this.options.max) return undefined;
    const worker = this.spawn();
    this.logger.log(
      `worker ${worker.id} started: full batches are waiting (${this.live.size} of ${this.options.max} workers)`,
    );
    return worker;
  }

  private dispatch(worker: Worker, items: T[]): void {
    clearTimeout(worker.idleTimer);
    worker.state = 'busy';
    this.inFlight++;
    const startedAt = Date.now();
    const job: Job = { committed: false, reclaimed: false };
    const { controller } = worker;
    const timer = setTimeout(() => this.onTimeout(worker, items, job, controller), this.options.timeoutMs);
    const write = (async () =>
      this.writer({
        workerId: worker.id,
        items,
        signal: controller.signal,
        commit: () => {
          job.committed = true;
        },
      }))();
    write
      .then(
        () => this.settle(worker, items, job, timer, startedAt),
        (error: unknown) => this.settle(worker, items, job, timer, startedAt, error),
      )
      .catch((error: unknown) => this.logger.error(`settling a batch of worker ${worker.id}: ${describeError(error)}`));
  }

  private settle(
    worker: Worker,
    items: T[],
    job: Job,
    timer: NodeJS.Timeout,
    startedAt: number,
    error?: unknown,
  ): void {
    clearTimeout(timer);
    // A reclaimed job was already counted out and its items are back in the batch.
    if (job.reclaimed) return;
    this.inFlight--;
    if (error === undefined) {
      worker.processed += items.length;
      this.failures = 0;
      this.writtenSinceReport = true;
      try {
        this.hooks.written(items, worker.id, Date.now() - startedAt);
      } catch (hookError) {
        this.logger.error(`after worker ${worker.id} wrote ${items.length} entries: ${describeError(hookError)}`);
      }
    } else {
      this.batch.putBack(items);
      this.failures++;
      const { initial, max } = this.options.retryDelayMs;
      const delay = Math.min(max, initial * 2 ** (this.failures - 1));
      this.retryAt = Date.now() + delay;
      this.logger.error(
        `worker ${worker.id} could not write ${items.length} entries (${describeError(error)}); ` +
          `they go back to the batch, next try in ${delay} ms`,
      );
    }
    if (worker.state === 'busy') this.release(worker);
    this.pump();
  }

  private onTimeout(worker: Worker, items: T[], job: Job, controller: AbortController): void {
    // After close() the workers are retired and their entries go back with the channel.
    if (this.closed) return;
    this.retire(worker, 'timeout');
    if (job.committed) {
      // The rename is under way: the batch completes on its own and is acknowledged then.
      this.logger.warn(`worker ${worker.id} timed out after ${this.options.timeoutMs} ms while committing; retired`);
    } else {
      job.reclaimed = true;
      this.inFlight--;
      controller.abort();
      this.batch.putBack(items);
      this.logger.warn(
        `worker ${worker.id} timed out after ${this.options.timeoutMs} ms writing ${items.length} entries; ` +
          'retired, its entries go back to the batch',
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
        if (worker.state === 'idle' && this.live.size > this.options.min) {
          this.retire(worker, 'idle');
          this.logger.log(`worker ${worker.id} retired after ${this.options.idleMs} ms idle`);
        }
      }, this.options.idleMs);
      worker.idleTimer.unref();
    }
  }

  private retire(worker: Worker, reason: RetireReason): void {
    if (worker.state === 'retired') return;
    clearTimeout(worker.idleTimer);
    worker.state = 'retired';
    worker.reason = reason;
    this.live.delete(worker.id);
    const index = this.idle.indexOf(worker);
    if (index !== -1) this.idle.splice(index, 1);
    this.retired.push(worker);
    if (this.retired.length > this.options.historyLimit) {
      const forgotten = this.retired.shift();
      if (forgotten !== undefined) this.hooks.forgotten?.(forgotten.id);
    }
    this.hooks.resized?.(this.live.size, { retired: worker.id, reason });
  }

  private wakeIn(ms: number): void {
    clearTimeout(this.wakeTimer);
    this.wakeTimer = setTimeout(() => this.pump(), ms);
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

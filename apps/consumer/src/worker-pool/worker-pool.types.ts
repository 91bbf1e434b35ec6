export type RetireReason = 'idle' | 'timeout' | 'shutdown';

/** One line of a pool's history, as `GET /workers` shows it. */
export interface WorkerRecord {
  id: string;
  processed: number;
  state: 'active' | 'retired';
  reason: RetireReason | null;
}

/** One batch handed to the writer. */
export interface BatchJob<T> {
  workerId: string;
  items: T[];
  /** Aborted when the worker timed out before commit(): the writer must then not publish the batch. */
  signal: AbortSignal;
  /**
   * The writer calls this right before its point of no return (the rename); from then on a
   * timeout no longer takes the batch back, or it would be written twice.
   */
  commit(): void;
}

export type BatchWriter<T> = (job: BatchJob<T>) => Promise<void>;

export interface WorkerPoolOptions {
  shard: number;
  /** Workers at start, and the floor when idle ones retire. */
  min: number;
  /** Never more workers than this at once. */
  max: number;
  /** A write that takes longer retires its worker. */
  timeoutMs: number;
  /** A worker idle this long retires while the pool is above `min`. */
  idleMs: number;
  /** How often the history is logged while work flows. */
  reportEveryMs: number;
  /** Retired workers kept in the history. */
  historyLimit: number;
  /** First and longest pause after a failed write before the next try. */
  retryDelayMs: { initial: number; max: number };
}

export interface WorkerPoolHooks<T> {
  /** A batch is complete: every item in it is durably written, `ms` after it was handed out. */
  written(items: T[], workerId: string, ms: number): void;
  /** A worker started or retired; `size` is how many are live now. */
  resized?(size: number, change: { started?: string; retired?: string; reason?: RetireReason }): void;
  /** A retired worker dropped out of the history (it keeps the last `historyLimit`). */
  forgotten?(workerId: string): void;
  /**
   * Whether a partial batch should go now rather than wait for its age (e.g. no more can arrive);
   * asked only while no write is in flight.
   */
  flushEarly?(): boolean;
}

import type { RetireReason, WorkerRecord } from '@app/contracts';
import type { BatchBufferOptions } from '../batch/batch-buffer';

/** A line of a pool's history and why a worker retired: what `GET /workers` shows, defined in libs/contracts. */
export type { RetireReason, WorkerRecord };

/**
 * How a batch write is steered: the one control type between the pool, the runtime and the sink.
 * The sink calls `commit()` right before its point of no return (the rename); from then on a
 * timeout no longer takes the batch back, or it would be written twice.
 */
export interface WriteControl {
  /** Aborted when the worker timed out before commit(): the writer must then not publish the batch. */
  signal: AbortSignal;
  /** Throws (BatchReclaimedError) once the timeout took the batch back: the writer must then not publish it. */
  commit(): void;
  /** The write got its turn at the disk: the timeout counts from now (waiting for the turn is not a slow write). */
  started?: () => void;
}

/** One batch handed to the writer: its items, in order, and the control of its write. */
export interface BatchJob<T> extends WriteControl {
  workerId: string;
  items: readonly T[];
}

export type BatchWriter<T> = (job: BatchJob<T>) => Promise<void>;

/** How an `add()` ended: every item in a complete file, or some dropped (discard, close) before being written. */
export type AddOutcome = 'written' | 'discarded';

export interface WorkerPoolOptions {
  shard: number;
  /** The shape of the batches taken from the pool's buffer. */
  batch: BatchBufferOptions;
  /**
   * With this many `add()` calls still waiting for their items to be written, a partial batch goes
   * at once rather than after its flush delay (the consumer's prefetch: no more deliveries can
   * come). Asked again each time: a shard's prefetch follows the size of its deliveries.
   */
  flushAtPendingAdds?: () => number;
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
  written?(items: readonly T[], workerId: string, ms: number): void;
  /** A worker started or retired; `size` is how many are live now. */
  resized?(size: number, change: { started?: string; retired?: string; reason?: RetireReason }): void;
  /** A retired worker dropped out of the history (it keeps the last `historyLimit`). */
  forgotten?(workerId: string): void;
}

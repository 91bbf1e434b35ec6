import { Worker } from 'node:worker_threads';
import { SinkWriteAbortedError } from './sink-write-aborted.error';

/**
 * The thread's code: each message names a staged file and its text; the thread writes it with
 * `writeFileSync` (open, write, close) and answers with the message's number and, on failure, the
 * error's message and code. Plain JavaScript in a string: the app is bundled, and a function's
 * source would carry the bundler's `require`.
 */
const THREAD_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { writeFileSync } = require('node:fs');
parentPort.on('message', ({ id, path, data }) => {
  try {
    writeFileSync(path, data);
    parentPort.postMessage({ id });
  } catch (error) {
    parentPort.postMessage({ id, error: { message: String(error && error.message), code: error && error.code } });
  }
});
`;

/** Files handed to the thread at once; the rest wait here, where an abort can still drop them. */
export const STAGING_THREAD_DEPTH = 8;

/**
 * The text is copied into the thread's heap, where a small young generation frees it within a few
 * files. (Transferring encoded buffers instead let them pile up outside the heap until a full
 * collection: 85 MB for 5 MiB files in a probe, and the consumer past 256 MB with 1 MiB entries.)
 */
const THREAD_LIMITS = { maxYoungGenerationSizeMb: 2 };

interface Job {
  id: number;
  path: string;
  data: string;
  signal?: AbortSignal;
  onAbort?: () => void;
  resolve(): void;
  reject(error: Error): void;
}

/** The thread stopped (close()) or died while it had the write. */
export class StagingThreadError extends Error {
  constructor(reason: string) {
    super(`the staging thread ${reason}`);
    this.name = StagingThreadError.name;
  }
}

interface ThreadReply {
  id: number;
  error?: { message: string; code?: string };
}

/**
 * Writes staged files on one worker thread. Through `fs/promises` a staged file costs three round
 * trips through libuv's thread pool (open, write, close), and at small batches those hand-overs
 * were most of the drain's main-thread time; the thread does the three calls in one. The sink uses
 * it only for small batches without SINK_FSYNC (`usesStagingThread`, docs/file-sink.md).
 *
 * A stalled disk stalls the thread as it would stall libuv's threads; a job not yet handed over
 * is dropped as soon as its signal aborts, so timed-out writes do not pile up behind it. Should the
 * thread die, its jobs fail (the batches are written again) and the next write starts a new one.
 */
export class StagingThread {
  private worker?: Worker;
  private readonly sent = new Map<number, Job>();
  private readonly waiting: Job[] = [];
  private nextId = 0;
  private closed = false;

  /** Resolves once `data` is in the file at `path` (created or truncated); rejects with the system call's error. */
  write(path: string, data: string, signal?: AbortSignal): Promise<void> {
    if (this.closed) return Promise.reject(new StagingThreadError('was stopped'));
    if (signal?.aborted) return Promise.reject(new SinkWriteAbortedError());
    return new Promise((resolve, reject) => {
      const job: Job = { id: ++this.nextId, path, data, signal, resolve, reject };
      if (signal !== undefined) {
        job.onAbort = () => {
          const at = this.waiting.indexOf(job);
          if (at === -1) return;
          this.waiting.splice(at, 1);
          reject(new SinkWriteAbortedError());
        };
        signal.addEventListener('abort', job.onAbort, { once: true });
      }
      this.waiting.push(job);
      this.handOver();
    });
  }

  /**
   * Stops the thread for good; writes under way, waiting or asked for later fail (a drain cut by
   * SHUTDOWN_TIMEOUT_MS starts no second thread). Does not wait for it: a thread stuck in a system
   * call (a stalled disk) ends only when the call returns, or with the process.
   */
  close(): void {
    this.closed = true;
    const worker = this.worker;
    this.worker = undefined;
    this.failAll(new StagingThreadError('was stopped'));
    worker?.unref();
    void worker?.terminate();
  }

  private handOver(): void {
    while (this.sent.size < STAGING_THREAD_DEPTH && this.waiting.length > 0) {
      const job = this.waiting.shift() as Job;
      if (job.onAbort !== undefined) job.signal?.removeEventListener('abort', job.onAbort);
      // Throws only from write() (a thread is started only when none runs, so nothing else waits): its promise rejects.
      const worker = this.thread();
      this.sent.set(job.id, job);
      worker.postMessage({ id: job.id, path: job.path, data: job.data });
    }
    // Referenced only while it has work: an idle thread must not keep the process alive.
    if (this.sent.size > 0) this.worker?.ref();
    else this.worker?.unref();
  }

  private thread(): Worker {
    if (this.worker !== undefined) return this.worker;
    const worker = new Worker(THREAD_SOURCE, { eval: true, resourceLimits: THREAD_LIMITS });
    worker.on('message', (reply: ThreadReply) => this.settle(reply));
    const died = (error: Error) => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      this.failAll(error);
    };
    worker.on('error', died);
    worker.on('exit', (code) => died(new StagingThreadError(`exited with code ${code}`)));
    this.worker = worker;
    return worker;
  }

  private settle({ id, error }: ThreadReply): void {
    const job = this.sent.get(id);
    if (job === undefined) return;
    this.sent.delete(id);
    if (error === undefined) job.resolve();
    else job.reject(Object.assign(new Error(error.message), error.code === undefined ? {} : { code: error.code }));
    this.handOver();
  }

  private failAll(error: Error): void {
    const jobs = [...this.sent.values(), ...this.waiting.splice(0)];
    this.sent.clear();
    for (const job of jobs) {
      if (job.onAbort !== undefined) job.signal?.removeEventListener('abort', job.onAbort);
      job.reject(error);
    }
  }
}

import { Logger } from '@nestjs/common';
import { DEFAULT_POOL_OPTIONS, WorkerPool } from './worker-pool';
import type { AddOutcome, BatchJob, WorkerPoolOptions } from './worker-pool.types';

interface Call {
  job: BatchJob<number>;
  resolve: () => void;
  reject: (error: Error) => void;
}

/** A pool over a writer whose every call waits until the test settles it. */
function setup(overrides: Partial<WorkerPoolOptions> = {}, batchSize = 5) {
  const calls: Call[] = [];
  const written: Array<{ items: number[]; workerId: string }> = [];
  const sizes: number[] = [];
  const forgotten: string[] = [];
  const pool = new WorkerPool<number>(
    {
      ...DEFAULT_POOL_OPTIONS,
      shard: 2,
      batch: { size: batchSize, flushMs: 1_000 },
      min: 3,
      max: 4,
      timeoutMs: 10_000,
      idleMs: 5_000,
      ...overrides,
    },
    (job) => new Promise<void>((resolve, reject) => calls.push({ job, resolve, reject })),
    {
      written: (items, workerId) => written.push({ items: [...items], workerId }),
      resized: (size) => sizes.push(size),
      forgotten: (workerId) => forgotten.push(workerId),
    },
  );
  const outcomes: AddOutcome[] = [];
  /** Adds `count` numbers from `from`; the promise resolves as the pool's add() does. */
  const track = (from: number, count: number) =>
    pool.add(Array.from({ length: count }, (_, i) => from + i)).then((outcome) => {
      outcomes.push(outcome);
      return outcome;
    });
  const add = (from: number, count: number): void => void track(from, count);
  const finish = async (call: Call, error?: Error) => {
    (call as { done?: boolean }).done = true;
    if (error) call.reject(error);
    else call.resolve();
    await jest.advanceTimersByTimeAsync(0);
  };
  return { pool, calls, written, sizes, forgotten, outcomes, add, track, finish };
}

describe('WorkerPool', () => {
  beforeEach(() => {
    jest.useFakeTimers();
    jest.spyOn(Logger.prototype, 'log').mockImplementation();
    jest.spyOn(Logger.prototype, 'warn').mockImplementation();
    jest.spyOn(Logger.prototype, 'error').mockImplementation();
  });
  afterEach(() => {
    jest.useRealTimers();
    jest.restoreAllMocks();
  });

  it('refuses options that cannot work', () => {
    const batch = { size: 5, flushMs: 1_000 };
    const base = { ...DEFAULT_POOL_OPTIONS, shard: 0, batch, min: 3, max: 4, timeoutMs: 1_000, idleMs: 1_000 };
    expect(() => new WorkerPool({ ...base, min: 0 }, async () => undefined)).toThrow(RangeError);
    expect(() => new WorkerPool({ ...base, max: 2 }, async () => undefined)).toThrow(RangeError);
    expect(() => new WorkerPool({ ...base, batch: { size: 0, flushMs: 1 } }, async () => undefined)).toThrow(
      RangeError,
    );
  });

  it('starts with min workers, named <shard>-<n>', () => {
    const { pool } = setup();
    pool.start();
    expect(pool.history()).toEqual([
      { id: '2-1', processed: 0, state: 'active', reason: null },
      { id: '2-2', processed: 0, state: 'active', reason: null },
      { id: '2-3', processed: 0, state: 'active', reason: null },
    ]);
    pool.close();
  });

  it('grows to max while full batches wait, never beyond, and shrinks back to min when idle', async () => {
    const { pool, calls, add, finish, written, sizes } = setup();
    pool.start();
    add(0, 50);
    expect(sizes).toEqual([1, 2, 3, 4]);
    expect(pool.size).toBe(4);
    expect(calls).toHaveLength(4);
    expect(new Set(calls.map((call) => call.job.workerId)).size).toBe(4);

    while (written.length < 10) await finish(calls.find((call) => !(call as { done?: boolean }).done)!);
    expect(pool.size).toBe(4);
    expect(written.flatMap((w) => w.items).sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i));

    await jest.advanceTimersByTimeAsync(5_000);
    expect(pool.size).toBe(3);
    expect(sizes.at(-1)).toBe(3);
    const retired = pool.history().filter((w) => w.state === 'retired');
    expect(retired).toEqual([expect.objectContaining({ reason: 'idle' })]);
    pool.close();
  });

  it('does not grow for a partial batch', async () => {
    const { pool, calls, add } = setup({ min: 1, max: 4 });
    pool.start();
    add(0, 5);
    add(5, 3);
    expect(calls).toHaveLength(1);
    await jest.advanceTimersByTimeAsync(1_000);
    expect(calls).toHaveLength(1);
    expect(pool.size).toBe(1);
    pool.close();
  });

  it('writes a partial batch once its oldest entry has waited flushMs', async () => {
    const { pool, calls, add } = setup();
    pool.start();
    add(0, 2);
    await jest.advanceTimersByTimeAsync(999);
    expect(calls).toHaveLength(0);
    await jest.advanceTimersByTimeAsync(1);
    expect(calls.map((call) => call.job.items)).toEqual([[0, 1]]);
    pool.close();
  });

  it('retires a worker whose write times out, replaces it, and gives its entries to another worker', async () => {
    const { pool, calls, add, finish, written } = setup({ min: 1, max: 1 });
    pool.start();
    add(0, 5);
    expect(calls).toHaveLength(1);
    await jest.advanceTimersByTimeAsync(10_000);

    expect(calls[0].job.signal.aborted).toBe(true);
    expect(calls).toHaveLength(2);
    expect(calls[1].job.workerId).toBe('2-2');
    expect(calls[1].job.items).toEqual([0, 1, 2, 3, 4]);
    await finish(calls[1]);
    // The stalled write finishing late changes nothing: its batch was taken back.
    await finish(calls[0]);
    expect(written).toEqual([{ items: [0, 1, 2, 3, 4], workerId: '2-2' }]);
    expect(pool.history()).toEqual([
      { id: '2-2', processed: 5, state: 'active', reason: null },
      { id: '2-1', processed: 0, state: 'retired', reason: 'timeout' },
    ]);
    pool.close();
  });

  it('does not take back a batch whose commit began before the timeout', async () => {
    const { pool, calls, add, finish, written } = setup({ min: 1, max: 1 });
    pool.start();
    add(0, 5);
    calls[0].job.commit();
    await jest.advanceTimersByTimeAsync(10_000);
    expect(calls[0].job.signal.aborted).toBe(false);
    expect(calls).toHaveLength(1);
    await finish(calls[0]);
    expect(written).toEqual([{ items: [0, 1, 2, 3, 4], workerId: '2-1' }]);
    expect(pool.history()).toContainEqual({ id: '2-1', processed: 5, state: 'retired', reason: 'timeout' });
    pool.close();
  });

  it('puts a failed batch back and retries it after a pause', async () => {
    const { pool, calls, add, finish, written } = setup({ min: 1, max: 1 });
    pool.start();
    add(0, 5);
    await finish(calls[0], new Error('EIO'));
    expect(calls).toHaveLength(1);
    await jest.advanceTimersByTimeAsync(DEFAULT_POOL_OPTIONS.retryDelayMs.initial);
    expect(calls).toHaveLength(2);
    expect(calls[1].job.items).toEqual([0, 1, 2, 3, 4]);
    await finish(calls[1]);
    expect(written).toHaveLength(1);
    pool.close();
  });

  it('drains partial batches, waits for every write, then retires all workers on close', async () => {
    const { pool, calls, add, finish, written } = setup();
    pool.start();
    add(0, 7);
    let drained = false;
    const drain = pool.drain().then(() => (drained = true));
    expect(calls.map((call) => call.job.items.length)).toEqual([5, 2]);
    await finish(calls[0]);
    expect(drained).toBe(false);
    await finish(calls[1]);
    await drain;
    expect(written.flatMap((w) => w.items)).toHaveLength(7);
    pool.close();
    pool.close();
    expect(pool.history().every((w) => w.state === 'retired' && w.reason === 'shutdown')).toBe(true);
  });

  it('ignores a write timeout that fires after close: each worker retires once, for shutdown', async () => {
    const { pool, add } = setup({ min: 1, max: 1 });
    pool.start();
    add(0, 5);
    pool.close();
    await jest.advanceTimersByTimeAsync(10_000);
    expect(pool.history()).toEqual([{ id: '2-1', processed: 0, state: 'retired', reason: 'shutdown' }]);
  });

  it('flushes a partial batch early once flushAtPendingAdds adds wait, only while no write is in flight', async () => {
    const calls: Array<() => void> = [];
    const pool = new WorkerPool<number>(
      {
        ...DEFAULT_POOL_OPTIONS,
        shard: 0,
        batch: { size: 5, flushMs: 1_000 },
        flushAtPendingAdds: 2,
        min: 1,
        max: 2,
        timeoutMs: 10_000,
        idleMs: 5_000,
      },
      () => new Promise<void>((resolve) => calls.push(resolve)),
    );
    pool.start();
    void pool.add([1]);
    expect(calls).toHaveLength(0);
    void pool.add([2]);
    expect(calls).toHaveLength(1);
    void pool.add([3]);
    void pool.add([4]);
    expect(calls).toHaveLength(1);
    calls[0]();
    await jest.advanceTimersByTimeAsync(0);
    expect(calls).toHaveLength(2);
    pool.close();
  });

  it('resolves an add once its last item is written, even when its items span several batches', async () => {
    const { pool, calls, track, finish, outcomes } = setup({ min: 2, max: 2 });
    pool.start();
    const first = track(0, 3);
    const second = track(3, 4);
    expect(calls.map((call) => call.job.items)).toEqual([[0, 1, 2, 3, 4]]);
    await finish(calls[0]);
    await jest.advanceTimersByTimeAsync(0);
    // The first add is whole in the file; the second still has two items waiting.
    expect(outcomes).toEqual(['written']);
    await jest.advanceTimersByTimeAsync(1_000);
    expect(calls[1].job.items).toEqual([5, 6]);
    await finish(calls[1]);
    await expect(first).resolves.toBe('written');
    await expect(second).resolves.toBe('written');
    pool.close();
  });

  it('resolves the adds of discarded items as discarded, and writes the rest', async () => {
    const { pool, calls, track, finish } = setup({ min: 1, max: 1 });
    pool.start();
    const kept = track(0, 2);
    const dropped = track(10, 2);
    expect(pool.discard((item) => item >= 10)).toBe(2);
    await expect(dropped).resolves.toBe('discarded');
    expect(pool.buffered).toBe(2);
    await jest.advanceTimersByTimeAsync(1_000);
    expect(calls.map((call) => call.job.items)).toEqual([[0, 1]]);
    await finish(calls[0]);
    await expect(kept).resolves.toBe('written');
    pool.close();
  });

  it('close() releases onIdle() waiters, settles pending adds and clears its timers', async () => {
    const { pool, track } = setup({ min: 1, max: 1 });
    pool.start();
    const inFlight = track(0, 5);
    const buffered = track(5, 2);
    let idle = false;
    const waiter = pool.onIdle().then(() => (idle = true));
    pool.close();
    await jest.advanceTimersByTimeAsync(0);
    expect(idle).toBe(true);
    await waiter;
    await expect(buffered).resolves.toBe('discarded');
    expect(jest.getTimerCount()).toBe(0);
    await expect(pool.add([9])).resolves.toBe('discarded');
    void inFlight;
  });

  it('keeps only the last historyLimit retired workers', async () => {
    const { pool, calls, add, finish, forgotten } = setup({ min: 1, max: 1, historyLimit: 2 });
    pool.start();
    for (let round = 0; round < 4; round++) {
      add(round * 5, 5);
      await jest.advanceTimersByTimeAsync(10_000);
    }
    expect(pool.history().map((w) => w.id)).toEqual(['2-5', '2-3', '2-4']);
    expect(forgotten).toEqual(['2-1', '2-2']);
    await Promise.all(calls.map((call) => finish(call)));
    pool.close();
  });
});

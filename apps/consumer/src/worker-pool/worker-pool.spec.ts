import { Logger } from '@nestjs/common';
import { BatchReclaimedError, DEFAULT_POOL_OPTIONS, WorkerPool } from './worker-pool';
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
  const changes: Array<{ started?: string; retired?: string; reason?: string }> = [];
  const forgotten: string[] = [];
  const ms: number[] = [];
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
      written: (items, workerId, took) => {
        written.push({ items: [...items], workerId });
        ms.push(took);
      },
      resized: (size, change) => {
        sizes.push(size);
        changes.push(change);
      },
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
  /** The first write not yet finished. */
  const open = () => calls.find((call) => !(call as { done?: boolean }).done)!;
  return { pool, calls, written, sizes, changes, ms, forgotten, outcomes, add, track, finish, open };
}

describe('WorkerPool', () => {
  beforeEach(() => {
    jest.useFakeTimers();
    jest.spyOn(Logger.prototype, 'log').mockImplementation();
    jest.spyOn(Logger.prototype, 'warn').mockImplementation();
    jest.spyOn(Logger.prototype, 'error').mockImplementation();
  });
  afterEach(() => {
    // Spies first: a spy on a fake timer function must not outlive the fake clock.
    jest.restoreAllMocks();
    jest.useRealTimers();
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

  it('refuses the commit of a batch a timeout took back, so only its new worker writes it', async () => {
    const { pool, calls, add, finish, written } = setup({ min: 1, max: 1 });
    pool.start();
    add(0, 5);
    // The writer checked the signal, then awaited (its ledger record) past the timeout.
    await jest.advanceTimersByTimeAsync(10_000);
    expect(() => calls[0].job.commit()).toThrow(BatchReclaimedError);
    expect(() => calls[0].job.commit()).toThrow('worker 2-1 timed out before its commit');
    await finish(calls[0], new Error('commit refused'));
    await finish(calls[1]);
    expect(written).toEqual([{ items: [0, 1, 2, 3, 4], workerId: '2-2' }]);
    expect(calls).toHaveLength(2);
    pool.close();
  });

  it('counts the write timeout from started(): waiting for the disk is not a slow write', async () => {
    const { pool, calls, add } = setup({ min: 1, max: 1 });
    pool.start();
    add(0, 5);
    await jest.advanceTimersByTimeAsync(9_000);
    calls[0].job.started?.();
    await jest.advanceTimersByTimeAsync(9_000);
    expect(calls[0].job.signal.aborted).toBe(false);
    await jest.advanceTimersByTimeAsync(1_000);
    expect(calls[0].job.signal.aborted).toBe(true);
    expect(calls).toHaveLength(2);
    // A started() after the timeout fired revives nothing: the new worker's write is not timed out twice.
    calls[0].job.started?.();
    await jest.advanceTimersByTimeAsync(10_000);
    expect(pool.history().filter((w) => w.reason === 'timeout')).toHaveLength(2);
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
        flushAtPendingAdds: () => 2,
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

  /** What the pool logged at `level`, as text. */
  const logged = (level: 'log' | 'warn' | 'error'): string[] =>
    jest
      .mocked(Logger.prototype[level])
      .mock.calls.map(([message]) => (typeof message === 'string' ? message : (message as { text: string }).text));
  const histories = () => logged('log').filter((text) => text.includes('worker history'));

  it('names what is wrong with refused options, and accepts min = max', () => {
    const batch = { size: 5, flushMs: 1_000 };
    const base = { ...DEFAULT_POOL_OPTIONS, shard: 0, batch, min: 3, max: 4, timeoutMs: 1_000, idleMs: 1_000 };
    const make = (options: Partial<WorkerPoolOptions>) => () =>
      new WorkerPool({ ...base, ...options }, async () => undefined);
    expect(make({ min: 0 })).toThrow('min workers must be at least 1, got 0');
    expect(make({ min: 1.5 })).toThrow('min workers must be at least 1, got 1.5');
    expect(make({ max: 2 })).toThrow('max workers (2) must be at least min (3)');
    expect(make({ max: 3.5 })).toThrow('max workers (3.5) must be at least min (3)');
    for (const bad of [{ timeoutMs: 0 }, { idleMs: 0 }, { timeoutMs: Number.NaN }, { idleMs: Number.NaN }]) {
      expect(make(bad)).toThrow('worker timeout and idle time must be positive');
    }
    expect(make({ min: 1, max: 1 })).not.toThrow();
    expect(make({ min: 4, max: 4 })).not.toThrow();
  });

  it('resolves an empty add as written at once, without a write', async () => {
    const { pool, calls } = setup();
    pool.start();
    let outcome: AddOutcome | undefined;
    void pool.add([]).then((result) => (outcome = result));
    await jest.advanceTimersByTimeAsync(0);
    expect(outcome).toBe('written');
    await jest.advanceTimersByTimeAsync(2_000);
    expect(calls).toHaveLength(0);
    pool.close();
  });

  it('reports each start and retirement to the resized hook, the retirement before its replacement', async () => {
    const { pool, add, changes, sizes } = setup({ min: 1, max: 1 });
    pool.start();
    add(0, 5);
    await jest.advanceTimersByTimeAsync(10_000);
    pool.close();
    expect(changes).toEqual([
      { started: '2-1' },
      { retired: '2-1', reason: 'timeout' },
      { started: '2-2' },
      { retired: '2-2', reason: 'shutdown' },
    ]);
    expect(sizes).toEqual([1, 0, 1, 0]);
  });

  it('logs the history every reportEveryMs while batches are written, not while none are, and once at close', async () => {
    const { pool, calls, add, finish } = setup({ min: 1, max: 1 });
    pool.start();
    await jest.advanceTimersByTimeAsync(DEFAULT_POOL_OPTIONS.reportEveryMs);
    expect(histories()).toEqual([]);
    add(0, 5);
    await finish(calls[0]);
    await jest.advanceTimersByTimeAsync(DEFAULT_POOL_OPTIONS.reportEveryMs);
    expect(histories()).toEqual(['shard 2 worker history: 2-1 active 5']);
    await jest.advanceTimersByTimeAsync(2 * DEFAULT_POOL_OPTIONS.reportEveryMs);
    expect(histories()).toHaveLength(1);
    pool.close();
    pool.close();
    expect(histories()).toEqual([
      'shard 2 worker history: 2-1 active 5',
      'shard 2 final worker history: 2-1 retired (shutdown) 5',
    ]);
    const logger = jest.mocked(Logger.prototype.log).mock.contexts[0] as unknown as { context: string };
    expect(logger.context).toBe('WorkerPool shard 2');
    const [event] = jest.mocked(Logger.prototype.log).mock.calls.at(-1)!;
    expect((event as { fields: unknown }).fields).toEqual({
      event: 'worker_history',
      shard: 2,
      workers: [{ id: '2-1', processed: 5, state: 'retired', reason: 'shutdown' }],
    });
  });

  it('does not hold the process open for the history report or an idle worker awaiting retirement', async () => {
    const intervals = jest.spyOn(global, 'setInterval');
    const timeouts = jest.spyOn(global, 'setTimeout');
    const { pool, calls, add, finish } = setup();
    pool.start();
    add(0, 20);
    await finish(calls[3]);
    const idleTimers = timeouts.mock.calls.flatMap(([, ms], i) => (ms === 5_000 ? [timeouts.mock.results[i]] : []));
    expect(idleTimers).toHaveLength(1);
    expect(intervals.mock.results).toHaveLength(1);
    for (const { value } of [...idleTimers, ...intervals.mock.results]) {
      expect((value as NodeJS.Timeout).hasRef()).toBe(false);
    }
    pool.close();
  });

  it('logs why a worker started, with its id and the pool size', () => {
    const { pool, add } = setup();
    pool.start();
    add(0, 20);
    expect(logged('log')).toContain('worker 2-4 started: full batches are waiting (4 of 4 workers)');
    pool.close();
  });

  it('onIdle() resolves at once when idle, else only once nothing is buffered and no write is in flight', async () => {
    const { pool, calls, add, finish } = setup({ min: 1, max: 1 });
    pool.start();
    let idle = false;
    const waitIdle = () => {
      idle = false;
      void pool.onIdle().then(() => (idle = true));
    };
    waitIdle();
    await jest.advanceTimersByTimeAsync(0);
    expect(idle).toBe(true);

    add(0, 7);
    waitIdle();
    await finish(calls[0]);
    // Two entries still wait in the buffer, no write in flight.
    expect(idle).toBe(false);
    await jest.advanceTimersByTimeAsync(1_000);
    expect(calls).toHaveLength(2);
    // The buffer is empty, one write in flight.
    expect(idle).toBe(false);
    await finish(calls[1]);
    expect(idle).toBe(true);

    add(10, 2);
    waitIdle();
    expect(pool.discard(() => true)).toBe(2);
    await jest.advanceTimersByTimeAsync(0);
    expect(idle).toBe(true);
    pool.close();
  });

  it('does not resolve the add of a timed-out batch until another worker has written it', async () => {
    const { pool, calls, track, finish, outcomes } = setup({ min: 1, max: 1 });
    pool.start();
    void track(0, 5);
    let idle = false;
    void pool.onIdle().then(() => (idle = true));
    await jest.advanceTimersByTimeAsync(10_000);
    expect(logged('warn')).toEqual([
      'worker 2-1 timed out after 10000 ms writing 5 entries; retired, its entries go back to the buffer',
    ]);
    expect(logged('log')).toContain('worker 2-2 started in place of 2-1');
    await finish(calls[0]);
    expect(outcomes).toEqual([]);
    expect(idle).toBe(false);
    await finish(calls[1]);
    expect(outcomes).toEqual(['written']);
    expect(idle).toBe(true);
    pool.close();
    expect(histories()).toEqual(['shard 2 final worker history: 2-1 retired (timeout) 0, 2-2 retired (shutdown) 5']);
  });

  it('warns when a worker times out while committing, and keeps its batch with it', async () => {
    const { pool, calls, track, finish, outcomes } = setup({ min: 1, max: 1 });
    pool.start();
    void track(0, 5);
    calls[0].job.commit();
    await jest.advanceTimersByTimeAsync(10_000);
    expect(logged('warn')).toEqual(['worker 2-1 timed out after 10000 ms while committing; retired']);
    expect(outcomes).toEqual([]);
    await finish(calls[0]);
    expect(outcomes).toEqual(['written']);
    expect(calls).toHaveLength(1);
    pool.close();
  });

  it('forgets the timeout of a write that finished in time', async () => {
    const { pool, calls, add, finish } = setup({ min: 1, max: 1 });
    pool.start();
    add(0, 5);
    await jest.advanceTimersByTimeAsync(9_999);
    await finish(calls[0]);
    await jest.advanceTimersByTimeAsync(20_000);
    expect(calls).toHaveLength(1);
    expect(calls[0].job.signal.aborted).toBe(false);
    expect(pool.history()).toEqual([{ id: '2-1', processed: 5, state: 'active', reason: null }]);
    expect(logged('warn')).toEqual([]);
    pool.close();
  });

  it('backs off after each failed write up to retryDelayMs.max, and starts over after a success', async () => {
    const { pool, calls, add, finish } = setup({ min: 1, max: 1, retryDelayMs: { initial: 100, max: 300 } });
    pool.start();
    const retriedAfter = async (ms: number) => {
      const before = calls.length;
      await jest.advanceTimersByTimeAsync(ms - 1);
      expect(calls).toHaveLength(before);
      await jest.advanceTimersByTimeAsync(1);
      expect(calls).toHaveLength(before + 1);
    };
    add(0, 5);
    for (const delay of [100, 200, 300, 300]) {
      await finish(calls.at(-1)!, new Error('EIO'));
      await retriedAfter(delay);
    }
    expect(calls.at(-1)!.job.items).toEqual([0, 1, 2, 3, 4]);
    await finish(calls.at(-1)!);
    add(5, 5);
    await finish(calls.at(-1)!, new Error('EIO'));
    await retriedAfter(100);
    expect(logged('error')).toContain(
      'worker 2-1 could not write 5 entries (EIO); they go back to the buffer, next try in 200 ms',
    );
    pool.close();
  });

  it('tells the written hook how long the write took', async () => {
    const { pool, calls, add, finish, ms } = setup({ min: 1, max: 1 });
    pool.start();
    add(0, 5);
    await jest.advanceTimersByTimeAsync(300);
    await finish(calls[0]);
    expect(ms).toEqual([300]);
    pool.close();
  });

  it('still resolves the add when the written hook throws, and logs the hook error', async () => {
    const pool = new WorkerPool<number>(
      {
        ...DEFAULT_POOL_OPTIONS,
        shard: 0,
        batch: { size: 2, flushMs: 1_000 },
        min: 1,
        max: 1,
        timeoutMs: 1_000,
        idleMs: 1_000,
      },
      async () => undefined,
      {
        written: () => {
          throw new Error('metrics down');
        },
      },
    );
    pool.start();
    await expect(pool.add([1, 2])).resolves.toBe('written');
    expect(logged('error')).toEqual(['after worker 0-1 wrote 2 entries: metrics down']);
    pool.close();
  });

  it('retires a worker only after idleMs without work since its last batch, and only down to min', async () => {
    const { pool, calls, add, finish, changes } = setup();
    pool.start();
    add(0, 20);
    const fourth = calls.find((call) => call.job.workerId === '2-4')!;
    // 2-4 goes idle at 0 ms, takes a batch at 4,000 ms and is idle again from 4,500 ms.
    await finish(fourth);
    await jest.advanceTimersByTimeAsync(4_000);
    add(20, 5);
    expect(calls.at(-1)!.job.workerId).toBe('2-4');
    await jest.advanceTimersByTimeAsync(500);
    await finish(calls.at(-1)!);
    await jest.advanceTimersByTimeAsync(100);
    for (const call of calls.slice(0, 3)) await finish(call);
    // Its first idle spell would have ended at 5,000 ms; its second ends at 9,500 ms.
    await jest.advanceTimersByTimeAsync(400);
    expect(pool.size).toBe(4);
    await jest.advanceTimersByTimeAsync(4_499);
    expect(pool.size).toBe(4);
    await jest.advanceTimersByTimeAsync(1);
    // 2-4 was the first to idle 5,000 ms; the others then found the pool at min.
    expect(pool.size).toBe(3);
    expect(changes.at(-1)).toEqual({ retired: '2-4', reason: 'idle' });
    expect(logged('log')).toContain('worker 2-4 retired after 5000 ms idle');
    await jest.advanceTimersByTimeAsync(60_000);
    expect(pool.size).toBe(3);
    pool.close();
  });

  it('hands new batches only to live workers after one retired idle, growing again to max', async () => {
    const { pool, calls, add, finish, open } = setup();
    pool.start();
    add(0, 20);
    for (let i = 0; i < 4; i++) await finish(open());
    await jest.advanceTimersByTimeAsync(5_000);
    expect(pool.size).toBe(3);
    const [retired] = pool.history().filter((w) => w.state === 'retired');
    const before = calls.length;
    add(100, 20);
    const ids = calls.slice(before).map((call) => call.job.workerId);
    expect(ids).toHaveLength(4);
    expect(new Set(ids).size).toBe(4);
    expect(ids).not.toContain(retired.id);
    expect(pool.size).toBe(4);
    pool.close();
  });

  it('keeps every live worker available after one times out while the others idle', async () => {
    const { pool, calls, add } = setup();
    pool.start();
    add(0, 5);
    await jest.advanceTimersByTimeAsync(10_000);
    // The timed-out worker's replacement took its batch; the two idle workers and one new one take the next three.
    expect(calls).toHaveLength(2);
    add(5, 15);
    expect(calls).toHaveLength(5);
    const busy = new Set(calls.slice(1).map((call) => call.job.workerId));
    expect(busy.size).toBe(4);
    expect(pool.size).toBe(4);
    pool.close();
  });

  it('no longer counts a discarded add toward flushAtPendingAdds', async () => {
    const { pool, calls, track, add } = setup({ min: 1, max: 1, flushAtPendingAdds: () => 2 });
    pool.start();
    const dropped = track(10, 2);
    expect(pool.discard((item) => item >= 10)).toBe(2);
    await expect(dropped).resolves.toBe('discarded');
    add(0, 1);
    expect(calls).toHaveLength(0);
    add(1, 1);
    expect(calls.map((call) => call.job.items)).toEqual([[0, 1]]);
    pool.close();
  });

  it('close() stops idle-retirement timers, and a write failing after close() schedules nothing and is discarded', async () => {
    const { pool, calls, track, finish } = setup();
    pool.start();
    const outcomes: AddOutcome[] = [];
    for (let from = 0; from < 20; from += 5) void track(from, 5).then((outcome) => (outcomes[from / 5] = outcome));
    await finish(calls[0]);
    // Its worker is idle above min, waiting to retire.
    pool.close();
    expect(jest.getTimerCount()).toBe(0);
    await finish(calls[1], new Error('EIO'));
    expect(jest.getTimerCount()).toBe(0);
    await finish(calls[2]);
    await finish(calls[3], new Error('EIO'));
    expect(outcomes).toEqual(['written', 'discarded', 'written', 'discarded']);
    expect(pool.buffered).toBe(0);
  });

  it('close() drops what is buffered', () => {
    const { pool, add } = setup({ min: 1, max: 1 });
    pool.start();
    add(0, 12);
    expect(pool.buffered).toBe(7);
    pool.close();
    expect(pool.buffered).toBe(0);
  });

  it('flushes early only while no write is in flight, even with an idle worker at hand', async () => {
    const { pool, calls, add, finish } = setup({ min: 2, max: 2, flushAtPendingAdds: () => 2 });
    pool.start();
    add(0, 1);
    add(1, 1);
    expect(calls.map((call) => call.job.items)).toEqual([[0, 1]]);
    add(2, 1);
    add(3, 1);
    expect(calls).toHaveLength(1);
    await finish(calls[0]);
    expect(calls.map((call) => call.job.items)).toEqual([
      [0, 1],
      [2, 3],
    ]);
    pool.close();
  });

  it('leaves no timer behind when a write finishes after close() during a retry pause', async () => {
    const { pool, calls, add, finish } = setup({ min: 2, max: 2 });
    pool.start();
    add(0, 10);
    await finish(calls[0], new Error('EIO'));
    pool.close();
    await finish(calls[1]);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('arms no wake-up while nothing waits, nor while every worker is busy: a finished write wakes it', async () => {
    const { pool, calls, add, finish } = setup({ min: 1, max: 1 });
    pool.start();
    // The history report only.
    expect(jest.getTimerCount()).toBe(1);
    add(0, 5);
    add(5, 2);
    await jest.advanceTimersByTimeAsync(1_000);
    // The partial batch is due, but the worker is busy: the report and the write's timeout only.
    expect(jest.getTimerCount()).toBe(2);
    expect(calls).toHaveLength(1);
    await finish(calls[0]);
    expect(calls.map((call) => call.job.items)).toEqual([
      [0, 1, 2, 3, 4],
      [5, 6],
    ]);
    await finish(calls[1]);
    expect(jest.getTimerCount()).toBe(1);
    pool.close();
  });

  it('works without hooks: nothing is logged as an error, and the history is still trimmed', async () => {
    let tries = 0;
    const pool = new WorkerPool<number>(
      {
        ...DEFAULT_POOL_OPTIONS,
        shard: 0,
        batch: { size: 2, flushMs: 1_000 },
        min: 1,
        max: 1,
        timeoutMs: 1_000,
        idleMs: 1_000,
        historyLimit: 1,
      },
      // The first two tries stall until they time out; the third writes.
      () => (++tries <= 2 ? new Promise<void>(() => undefined) : Promise.resolve()),
    );
    pool.start();
    let outcome: AddOutcome | undefined;
    void pool.add([1, 2]).then((result) => (outcome = result));
    await jest.advanceTimersByTimeAsync(2_000);
    expect(outcome).toBe('written');
    expect(pool.history().map((w) => w.id)).toEqual(['0-3', '0-2']);
    expect(logged('error')).toEqual([]);
    pool.close();
  });

  it('retries a failed batch after its pause even while a later flush wake-up is armed', async () => {
    const { pool, calls, add, finish } = setup({ min: 1, max: 1 });
    pool.start();
    add(0, 5);
    // A partial batch: a wake-up armed for its flush, 1 s away.
    add(5, 2);
    await finish(calls[0], new Error('EIO'));
    // The retry pause ends first: the wake-up must move forward to it.
    await jest.advanceTimersByTimeAsync(DEFAULT_POOL_OPTIONS.retryDelayMs.initial);
    expect(calls).toHaveLength(2);
    expect(calls[1].job.items).toEqual([0, 1, 2, 3, 4]);
    pool.close();
  });

  it('keeps its wake-up timer across adds that do not bring it forward, and arms it once', async () => {
    const { pool, calls, add } = setup({ min: 1, max: 1 });
    pool.start();
    const timeouts = jest.spyOn(global, 'setTimeout');
    add(0, 1);
    await jest.advanceTimersByTimeAsync(300);
    add(1, 1);
    add(2, 1);
    // One wake-up, for the flush of the oldest entry; the later adds are due later.
    expect(timeouts).toHaveBeenCalledTimes(1);
    expect(jest.getTimerCount()).toBe(2);
    await jest.advanceTimersByTimeAsync(699);
    expect(calls).toHaveLength(0);
    await jest.advanceTimersByTimeAsync(1);
    expect(calls.map((call) => call.job.items)).toEqual([[0, 1, 2]]);
    pool.close();
  });
});

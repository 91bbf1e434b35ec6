import { ByteBudget } from './byte-budget';

/** Whether `promise` has settled, after the microtasks queued so far have run. */
async function settled<T>(promise: Promise<T>): Promise<boolean> {
  let done = false;
  void promise.then(() => (done = true));
  await new Promise((resolve) => setImmediate(resolve));
  return done;
}

describe('ByteBudget', () => {
  const open = () => new AbortController().signal;

  it('refuses a budget that is not positive', () => {
    expect(() => new ByteBudget(0)).toThrow(RangeError);
  });

  it('lets requests in while they fit, holds the next until bytes come back, and counts both', async () => {
    const budget = new ByteBudget(100);
    const first = await budget.take(60, open());
    const second = await budget.take(40, open());
    expect(budget.inUse).toBe(100);
    const third = budget.take(1, open());
    expect(await settled(third)).toBe(false);
    expect(budget.waiting).toBe(1);
    first?.();
    expect(await settled(third)).toBe(true);
    expect(budget.inUse).toBe(41);
    expect(budget.waiting).toBe(0);
    second?.();
    (await third)?.();
    expect(budget.inUse).toBe(0);
  });

  it('lets a request larger than the whole budget in alone, counted as the whole budget', async () => {
    const budget = new ByteBudget(100);
    const big = await budget.take(500, open());
    expect(budget.inUse).toBe(100);
    const small = budget.take(1, open());
    expect(await settled(small)).toBe(false);
    big?.();
    expect(await settled(small)).toBe(true);
  });

  it('never lets a later request overtake a waiting one, so large requests are not starved', async () => {
    const budget = new ByteBudget(100);
    const held = await budget.take(50, open());
    const large = budget.take(80, open());
    const small = budget.take(10, open());
    expect(await settled(small)).toBe(false);
    held?.();
    expect(await settled(large)).toBe(true);
    expect(await settled(small)).toBe(true);
    expect(budget.inUse).toBe(90);
  });

  it('gives up a wait when its signal aborts, and lets those behind it in', async () => {
    const budget = new ByteBudget(100);
    const held = await budget.take(50, open());
    const gone = new AbortController();
    const large = budget.take(80, gone.signal);
    const small = budget.take(10, open());
    gone.abort();
    await expect(large).resolves.toBeUndefined();
    expect(await settled(small)).toBe(true);
    expect(budget.inUse).toBe(60);
    expect(budget.waiting).toBe(0);
    held?.();
  });

  it('answers undefined at once to a request whose signal already aborted, if it must wait', async () => {
    const budget = new ByteBudget(10);
    await budget.take(10, open());
    await expect(budget.take(1, AbortSignal.abort())).resolves.toBeUndefined();
    expect(budget.waiting).toBe(0);
  });

  it('grants at once or not at all with tryTake, never jumping the queue', async () => {
    const budget = new ByteBudget(100);
    const held = budget.tryTake(90);
    expect(budget.tryTake(20)).toBeUndefined();
    const waiting = budget.take(20, open());
    held?.();
    expect(await settled(waiting)).toBe(true);
    expect(budget.tryTake(80)).toBeDefined();
    expect(budget.inUse).toBe(100);
  });

  it('gives bytes back once however often the release is called', async () => {
    const budget = new ByteBudget(100);
    const release = await budget.take(30, open());
    await budget.take(30, open());
    release?.();
    release?.();
    expect(budget.inUse).toBe(30);
  });
});

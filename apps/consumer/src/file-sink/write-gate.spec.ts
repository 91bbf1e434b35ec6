import { WriteGate } from './write-gate';

describe('WriteGate', () => {
  it('admits up to its limit at once, then one per leave(), oldest first', async () => {
    const gate = new WriteGate(2);
    const order: string[] = [];
    expect(await gate.enter()).toBe(true);
    expect(await gate.enter()).toBe(true);
    const third = gate.enter().then((ok) => order.push(`third ${ok}`));
    const fourth = gate.enter().then((ok) => order.push(`fourth ${ok}`));
    await Promise.resolve();
    expect(order).toEqual([]);
    expect(gate.load).toEqual({ active: 2, waiting: 2 });
    gate.leave();
    await third;
    expect(order).toEqual(['third true']);
    gate.leave();
    await fourth;
    expect(order).toEqual(['third true', 'fourth true']);
    gate.leave();
    gate.leave();
    expect(gate.load).toEqual({ active: 0, waiting: 0 });
  });

  it('lets a waiting write aborted by its signal leave the line without a turn, and skips it', async () => {
    const gate = new WriteGate(1);
    await gate.enter();
    const controller = new AbortController();
    const aborted = gate.enter(controller.signal);
    const next = gate.enter();
    controller.abort();
    expect(await aborted).toBe(false);
    expect(gate.load).toEqual({ active: 1, waiting: 1 });
    gate.leave();
    expect(await next).toBe(true);
    expect(gate.load).toEqual({ active: 1, waiting: 0 });
  });

  it('refuses a signal already aborted at once, and forgets the listener of an admitted write', async () => {
    const gate = new WriteGate(1);
    const controller = new AbortController();
    controller.abort();
    expect(await gate.enter(controller.signal)).toBe(false);
    expect(gate.load).toEqual({ active: 0, waiting: 0 });

    await gate.enter();
    const live = new AbortController();
    const remove = jest.spyOn(live.signal, 'removeEventListener');
    const waiting = gate.enter(live.signal);
    gate.leave();
    expect(await waiting).toBe(true);
    expect(remove).toHaveBeenCalledWith('abort', expect.any(Function));
    // An abort after admission changes nothing in the gate.
    live.abort();
    expect(gate.load).toEqual({ active: 1, waiting: 0 });
  });

  it('refuses a limit below 1', () => {
    expect(() => new WriteGate(0)).toThrow('the write gate needs a limit of at least 1, got 0');
  });
});

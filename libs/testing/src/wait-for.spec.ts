import { WaitTimeoutError, waitFor, withDeadline } from './wait-for';

describe('waitFor', () => {
  it('resolves with the first value that is not false, null or undefined', async () => {
    let calls = 0;
    const result = await waitFor(() => (++calls >= 3 ? { calls } : undefined), {
      description: 'the third call',
      intervalMs: 1,
    });
    expect(result).toEqual({ calls: 3 });
  });

  it('treats a throwing probe as not yet', async () => {
    let calls = 0;
    await expect(
      waitFor(
        async () => {
          if (++calls < 2) throw new Error('not yet');
          return true;
        },
        { description: 'a probe that stops throwing', intervalMs: 1 },
      ),
    ).resolves.toBe(true);
  });

  it('names what it waited for and the last failure when the deadline passes', async () => {
    const waiting = waitFor(
      () => {
        throw new Error('queue holds 2 messages');
      },
      { description: 'an empty queue', timeoutMs: 30, intervalMs: 5 },
    );
    await expect(waiting).rejects.toThrow(WaitTimeoutError);
    await expect(waiting).rejects.toThrow(
      'timed out after 30 ms waiting for an empty queue (last: queue holds 2 messages)',
    );
  });

  it('gives up at the deadline even when a probe hangs', async () => {
    const started = Date.now();
    await expect(
      waitFor(() => new Promise<boolean>(() => undefined), { description: 'a hung probe', timeoutMs: 50 }),
    ).rejects.toThrow('an attempt was still running at the deadline');
    expect(Date.now() - started).toBeLessThan(1_000);
  });
});

describe('waitFor with failFast', () => {
  class Gone extends Error {}

  it('ends the wait at once on an error of that class', async () => {
    const started = Date.now();
    await expect(
      waitFor(
        () => {
          throw new Gone('the process exited');
        },
        { description: 'a dead process', timeoutMs: 5_000, failFast: Gone },
      ),
    ).rejects.toThrow('the process exited');
    expect(Date.now() - started).toBeLessThan(1_000);
  });
});

describe('withDeadline', () => {
  it('passes the result through', async () => {
    await expect(withDeadline(Promise.resolve(7), 1_000, 'seven')).resolves.toBe(7);
  });

  it('names what it waited for once the deadline passes', async () => {
    await expect(withDeadline(new Promise(() => undefined), 20, () => 'the broker to answer')).rejects.toThrow(
      new WaitTimeoutError('timed out after 20 ms waiting for the broker to answer'),
    );
  });
});

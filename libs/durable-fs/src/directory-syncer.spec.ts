import { mkdtempSync, promises as fsp, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DirectorySyncer } from './directory-syncer';

const realOpen = fsp.open.bind(fsp);

describe('DirectorySyncer', () => {
  function controlled() {
    const started: Array<{ resolve: () => void; reject: (error: Error) => void }> = [];
    const syncer = new DirectorySyncer(
      '/x',
      () => new Promise<void>((resolve, reject) => started.push({ resolve, reject })),
    );
    return { syncer, started };
  }

  it('shares one fsync among callers that arrive while one runs, and always starts one after the call', async () => {
    const { syncer, started } = controlled();
    const first = syncer.sync();
    const second = syncer.sync();
    const third = syncer.sync();
    expect(started).toHaveLength(1);
    started[0].resolve();
    await first;
    await new Promise(setImmediate);
    expect(started).toHaveLength(2);
    started[1].resolve();
    await Promise.all([second, third]);
    expect(started).toHaveLength(2);
  });

  it('does not resolve a caller that arrived during a running fsync until the next one is done', async () => {
    const { syncer, started } = controlled();
    void syncer.sync();
    let lateDone = false;
    const late = syncer.sync().then(() => (lateDone = true));
    started[0].resolve();
    await new Promise(setImmediate);
    expect(lateDone).toBe(false);
    started[1].resolve();
    await late;
    expect(lateDone).toBe(true);
  });

  it('rejects the callers of a failed fsync, but not those waiting for the next one, and starts afresh after', async () => {
    const { syncer, started } = controlled();
    const first = syncer.sync();
    const second = syncer.sync();
    started[0].reject(new Error('EIO'));
    await expect(first).rejects.toThrow('EIO');
    await new Promise(setImmediate);
    expect(started).toHaveLength(2);
    started[1].resolve();
    await expect(second).resolves.toBeUndefined();
    const third = syncer.sync();
    expect(started).toHaveLength(3);
    started[2].resolve();
    await expect(third).resolves.toBeUndefined();
  });

  it('makes a caller that arrives during a later fsync wait for a fresh one, after earlier callers shared one', async () => {
    const { syncer, started } = controlled();
    void syncer.sync();
    const shared = syncer.sync();
    started[0].resolve();
    await new Promise(setImmediate);
    started[1].resolve();
    await shared;
    void syncer.sync();
    expect(started).toHaveLength(3);
    let lateDone = false;
    const late = syncer.sync().then(() => (lateDone = true));
    await new Promise(setImmediate);
    expect(lateDone).toBe(false);
    started[2].resolve();
    await new Promise(setImmediate);
    expect(started).toHaveLength(4);
    expect(lateDone).toBe(false);
    started[3].resolve();
    await late;
  });

  it('by default opens the folder read-only, fsyncs it and closes it, also when the fsync fails', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'syncer-'));
    try {
      const events: string[] = [];
      let fail = false;
      jest.spyOn(fsp, 'open').mockImplementation(async (...args: Parameters<typeof fsp.open>) => {
        events.push(`open ${String(args[1])}`);
        const handle = await realOpen(...args);
        const close = handle.close.bind(handle);
        jest.spyOn(handle, 'sync').mockImplementation(async () => {
          events.push('sync');
          if (fail) throw new Error('EIO');
        });
        jest.spyOn(handle, 'close').mockImplementation(async () => {
          events.push('close');
          return close();
        });
        return handle;
      });
      await new DirectorySyncer(dir).sync();
      fail = true;
      await expect(new DirectorySyncer(dir).sync()).rejects.toThrow('EIO');
      expect(events).toEqual(['open r', 'sync', 'close', 'open r', 'sync', 'close']);
    } finally {
      jest.restoreAllMocks();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

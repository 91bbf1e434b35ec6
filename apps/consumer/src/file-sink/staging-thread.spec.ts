import { execFileSync } from 'node:child_process';
import { closeSync, constants, existsSync, mkdtempSync, openSync, readFileSync, readSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { SinkWriteAbortedError } from './sink-write-aborted.error';
import { STAGING_THREAD_DEPTH, StagingThread, StagingThreadError } from './staging-thread';

describe('StagingThread', () => {
  let dir: string;
  let thread: StagingThread;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'staging-thread-'));
    thread = new StagingThread();
  });
  afterEach(() => {
    thread.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /**
   * A named pipe nobody reads: the thread's open() of it blocks until `unblock()` opens the
   * reading end and drains what was written, a real stalled write.
   */
  function stalledFile(): { path: string; unblock(): string } {
    const path = join(dir, 'stalled.fifo');
    execFileSync('mkfifo', [path]);
    return {
      path,
      unblock() {
        const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
        const buffer = Buffer.alloc(64);
        try {
          // The writer may not have written yet once its open returned: read until it has.
          for (let deadline = Date.now() + 5_000; Date.now() < deadline;) {
            try {
              const read = readSync(fd, buffer);
              if (read > 0) return buffer.subarray(0, read).toString();
            } catch (error) {
              if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
            }
          }
          throw new Error('nothing arrived through the pipe');
        } finally {
          closeSync(fd);
        }
      },
    };
  }

  it('writes the whole text, creating or truncating the file', async () => {
    const path = join(dir, 'a.tmp');
    const text = `${'x'.repeat(3 * 1024 * 1024)}\n`;
    await thread.write(path, 'stale, longer than what replaces it\n');
    await thread.write(path, text);
    expect(readFileSync(path, 'utf8')).toBe(text);
  });

  it("rejects with the system call's code, and keeps working after", async () => {
    await expect(thread.write(join(dir, 'missing', 'a.tmp'), 'x')).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(thread.write(dir, 'x')).rejects.toMatchObject({ code: 'EISDIR' });
    await thread.write(join(dir, 'b.tmp'), 'y');
    expect(readFileSync(join(dir, 'b.tmp'), 'utf8')).toBe('y');
  });

  it('does nothing for a signal that aborted before the call', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(thread.write(join(dir, 'c.tmp'), 'x', controller.signal)).rejects.toBeInstanceOf(
      SinkWriteAbortedError,
    );
    expect(existsSync(join(dir, 'c.tmp'))).toBe(false);
  });

  it('hands the thread at most STAGING_THREAD_DEPTH files; one aborted while it waits behind a stalled write fails at once and is never written', async () => {
    const stalled = stalledFile();
    const first = thread.write(stalled.path, 'through the pipe');
    const handedOver = Array.from({ length: STAGING_THREAD_DEPTH - 1 }, (_, i) =>
      thread.write(join(dir, `${i}.tmp`), 'x'),
    );
    const controller = new AbortController();
    const waiting = thread.write(join(dir, 'abandoned.tmp'), 'x', controller.signal);
    const after = thread.write(join(dir, 'after.tmp'), 'y');
    controller.abort();
    // While the disk still stalls: a timed-out write holds nothing (its text, its turn) behind it.
    await expect(waiting).rejects.toBeInstanceOf(SinkWriteAbortedError);
    expect(stalled.unblock()).toBe('through the pipe');
    await first;
    await Promise.all(handedOver);
    await after;
    expect(existsSync(join(dir, 'abandoned.tmp'))).toBe(false);
    expect(readFileSync(join(dir, 'after.tmp'), 'utf8')).toBe('y');
  });

  it('fails the writes it had when the thread dies, and starts a new thread for the next write', async () => {
    const stalled = stalledFile();
    const underWay = thread.write(stalled.path, 'never read');
    const behind = thread.write(join(dir, 'behind.tmp'), 'x');
    // Reached through the private field: nothing else can kill the thread from outside.
    const worker = (thread as unknown as { worker: Worker }).worker;
    const exited = new Promise((resolve) => worker.once('exit', resolve));
    void worker.terminate();
    closeSync(openSync(stalled.path, constants.O_RDONLY | constants.O_NONBLOCK));
    await exited;
    await expect(underWay).rejects.toBeInstanceOf(StagingThreadError);
    await expect(behind).rejects.toThrow(/^the staging thread exited with code \d+$/);
    await thread.write(join(dir, 'next.tmp'), 'z');
    expect(readFileSync(join(dir, 'next.tmp'), 'utf8')).toBe('z');
  });

  it('fails a write when no thread can be started, and tries again for the next', async () => {
    const start = jest
      .spyOn(StagingThread.prototype as unknown as { thread(): Worker }, 'thread')
      .mockImplementationOnce(() => {
        throw new Error('ERR_WORKER_INIT_FAILED');
      });
    await expect(thread.write(join(dir, 'first.tmp'), 'x')).rejects.toThrow('ERR_WORKER_INIT_FAILED');
    await thread.write(join(dir, 'second.tmp'), 'y');
    expect(start).toHaveBeenCalledTimes(2);
    expect(readFileSync(join(dir, 'second.tmp'), 'utf8')).toBe('y');
  });

  it('fails the writes under way when closed, and every later one: no second thread during shutdown', async () => {
    const stalled = stalledFile();
    const underWay = thread.write(stalled.path, 'never read');
    const behind = thread.write(join(dir, 'behind.tmp'), 'x');
    thread.close();
    // The old thread ends once its open() returns (stopped, it writes nothing more).
    closeSync(openSync(stalled.path, constants.O_RDONLY | constants.O_NONBLOCK));
    await expect(underWay).rejects.toThrow('the staging thread was stopped');
    await expect(behind).rejects.toThrow('the staging thread was stopped');
    await expect(thread.write(join(dir, 'later.tmp'), 'z')).rejects.toBeInstanceOf(StagingThreadError);
    expect(existsSync(join(dir, 'later.tmp'))).toBe(false);
  });
});

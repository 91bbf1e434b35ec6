import { open } from 'node:fs/promises';

async function fsyncDirectory(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Makes renames into one directory durable with as few directory fsyncs as possible: callers
 * that arrive while an fsync runs share the next one, which starts after their rename.
 */
export class DirectorySyncer {
  private running: Promise<void> | null = null;
  private next: Promise<void> | null = null;

  constructor(
    private readonly path: string,
    private readonly fsync: (path: string) => Promise<void> = fsyncDirectory,
  ) {}

  /** Resolves after an fsync of the directory that began after this call. */
  sync(): Promise<void> {
    if (this.running === null) return this.start();
    // The running fsync may have begun before the caller's rename: wait for the one after it.
    this.next ??= this.running
      .catch(() => undefined)
      .then(() => {
        this.next = null;
        return this.start();
      });
    return this.next;
  }

  private start(): Promise<void> {
    const run = this.fsync(this.path).finally(() => {
      if (this.running === run) this.running = null;
    });
    this.running = run;
    return run;
  }
}

import { open } from 'node:fs/promises';
import { FreshRun } from './fresh-run';

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
  private readonly runs = new FreshRun(() => this.fsync(this.path));

  constructor(
    private readonly path: string,
    private readonly fsync: (path: string) => Promise<void> = fsyncDirectory,
  ) {}

  /** Resolves after an fsync of the directory that began after this call (so after the caller's rename). */
  sync(): Promise<void> {
    return this.runs.run();
  }
}

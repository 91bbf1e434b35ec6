import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TempDir {
  path: string;
  /** Deletes the folder and everything in it; safe to call twice. */
  remove(): Promise<void>;
}

/** A fresh, empty folder under the OS temp folder, e.g. for a test's DATA_OUTPUT_DIR. */
export async function tempDir(name: string): Promise<TempDir> {
  const slug = name.replace(/[^A-Za-z0-9_-]+/g, '-').slice(0, 40) || 'test';
  const path = await mkdtemp(join(tmpdir(), `${slug}-`));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * `mkdir -p` that fails where the folder cannot be made. Node's `mkdir(path, { recursive: true })`
 * spins for ever (100 % CPU, never settling) when the parent exists but refuses the child with
 * ENOENT, as /proc does: DATA_OUTPUT_DIR=/proc/data hung the consumer's start instead of stopping
 * it with a configuration error.
 */
export async function makeFolder(path: string): Promise<void> {
  const parent = dirname(path);
  try {
    await mkdir(path);
    return;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return;
    if (code !== 'ENOENT' || parent === path) throw error;
  }
  await makeFolder(parent);
  await mkdir(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'EEXIST') throw error;
  });
}

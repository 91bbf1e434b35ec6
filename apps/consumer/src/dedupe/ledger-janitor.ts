import { readFile, readdir, stat, unlink } from 'node:fs/promises';
import { UNSETTLED_KEEP_MS } from './dedupe.constants';
import { type WriterLiveness, parseSegmentName } from './ledger-segment-name';

export interface ForeignSweepOptions {
  dir: string;
  /** This process's writer (`<host>-<pid>-<startMs>`): its own segments are its writer's business. */
  ownWriter: string;
  liveness: WriterLiveness;
  now: number;
  /** Called for each segment deleted, so the index forgets it. */
  onDeleted(name: string): void;
}

/** The latest key expiry recorded in a segment's text (0 when none). */
export function maxExpiry(text: string): number {
  let max = 0;
  for (const match of text.matchAll(/"exp":(\d+)/g)) max = Math.max(max, Number(match[1]));
  return max;
}

/**
 * Deletes the segments of writers that are not running on this host (gone, or on another host)
 * once nothing in them can matter: a day after their last write (deliveries they held unacknowledged
 * have come back and been written by then) and after their keys expired. Resolves with the names deleted.
 */
export async function sweepForeignSegments(options: ForeignSweepOptions): Promise<string[]> {
  const { dir, ownWriter, liveness, now } = options;
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const deleted: string[] = [];
  for (const name of names) {
    const parsed = parseSegmentName(name);
    if (parsed === undefined || parsed.writer === ownWriter || liveness(parsed) === 'alive') continue;
    const path = `${dir}/${name}`;
    try {
      const { mtimeMs } = await stat(path);
      if (now < mtimeMs + UNSETTLED_KEEP_MS) continue;
      if (now < maxExpiry(await readFile(path, 'utf8'))) continue;
      await unlink(path);
      deleted.push(name);
      options.onDeleted(name);
    } catch (error) {
      // Another consumer deleted it first.
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  return deleted;
}

import { readFile, readdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { waitFor } from './wait-for';

export interface BatchLine {
  id: string;
  timestamp: string;
  value?: string;
}

export interface BatchFile {
  /** The file's name, e.g. `worker-2-4_..._<tag>-17.jsonl`. */
  name: string;
  /** The shard of the worker that wrote it, from the name. */
  shard: number;
  lines: BatchLine[];
}

/** Every complete batch file under `dir` (at any depth, names ending in `.jsonl`), parsed. */
export async function readBatchFiles(dir: string): Promise<BatchFile[]> {
  const files: BatchFile[] = [];
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.jsonl')) continue;
    const path = join(entry.parentPath, entry.name);
    const text = await readFile(path, 'utf8');
    const match = /^worker-(\d+)-\d+_/.exec(basename(path));
    if (match === null) throw new Error(`batch file with an unexpected name: ${path}`);
    const lines = text
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as BatchLine);
    files.push({ name: entry.name, shard: Number(match[1]), lines });
  }
  return files;
}

/** How often each entry id occurs across `files`. */
export function countIds(files: readonly BatchFile[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const file of files) for (const { id } of file.lines) counts.set(id, (counts.get(id) ?? 0) + 1);
  return counts;
}

/** Entries written so far under `dir`, copies included. */
export async function writtenCount(dir: string): Promise<number> {
  return (await readBatchFiles(dir)).reduce((sum, file) => sum + file.lines.length, 0);
}

/** Waits until every id of `ids` is in a complete batch file under `dir`; resolves with the files. */
export async function waitForAllWritten(dir: string, ids: Iterable<string>, timeoutMs = 60_000): Promise<BatchFile[]> {
  const expected = [...ids];
  return waitFor(
    async () => {
      const files = await readBatchFiles(dir);
      const seen = countIds(files);
      const missing = expected.filter((id) => !seen.has(id)).length;
      // Thrown rather than false, so that a timeout says how far it got.
      if (missing > 0) throw new Error(`${missing} of ${expected.length} entries not in a file yet`);
      return files;
    },
    { description: `${expected.length} entries in batch files under ${dir}`, timeoutMs, intervalMs: 200 },
  );
}

import { type ChildProcess, spawn } from 'node:child_process';
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { TestBroker, freePort, tempDir, testPrefix, waitFor } from '@app/testing';
import { preloadBacklog } from './backlog';

const ROOT = join(__dirname, '..', '..');

export type DrainTarget = 'consumer' | 'baseline';

export interface DrainCase {
  fsync: boolean;
  batchSize: number;
}

export interface DrainFigures extends DrainCase {
  target: DrainTarget;
  entries: number;
  /** Entries over the span from the first to the last completed file. */
  entriesPerSecond: number;
  /** From process start to the last entry written, boot included. */
  wallSeconds: number;
  peakRssMb: number;
}

/** Peak resident set size of a live process, from /proc (Linux). */
async function peakRssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const match = /VmHWM:\s+(\d+) kB/.exec(status);
  return match ? Number(match[1]) / 1024 : Number.NaN;
}

async function fileSpanSeconds(dir: string): Promise<number> {
  let first = Number.POSITIVE_INFINITY;
  let last = 0;
  for (const name of await readdir(dir)) {
    if (!name.endsWith('.jsonl')) continue;
    const { mtimeMs } = await stat(join(dir, name));
    first = Math.min(first, mtimeMs);
    last = Math.max(last, mtimeMs);
  }
  return (last - first) / 1000;
}

function start(target: DrainTarget, env: Record<string, string>): { child: ChildProcess; processed: () => Promise<number> } {
  if (target === 'consumer') {
    const child = spawn(process.execPath, [join(ROOT, 'dist/apps/consumer/main.js')], {
      env: { ...process.env, ...env },
      stdio: 'ignore',
    });
    const processed = async () => {
      const response = await fetch(`http://127.0.0.1:${env.CONSUMER_PORT}/workers`);
      const body = (await response.json()) as { shards: Array<{ workers: Array<{ processed: number }> }> };
      return body.shards.flatMap((s) => s.workers).reduce((sum, w) => sum + w.processed, 0);
    };
    return { child, processed };
  }
  const child = spawn(
    process.execPath,
    ['-r', 'ts-node/register/transpile-only', '-r', 'tsconfig-paths/register', join(__dirname, 'drain-baseline.ts')],
    { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let latest = 0;
  child.stdout?.on('data', (chunk: Buffer) => {
    const match = /processed (\d+)\n$/.exec(chunk.toString());
    if (match) latest = Number(match[1]);
  });
  return { child, processed: async () => latest };
}

/** Preloads a backlog, starts `target` on it and measures how fast it drains into files. */
export async function measureDrain(
  target: DrainTarget,
  drainCase: DrainCase,
  { url, entries, perRequest = 100 }: { url: string; entries: number; perRequest?: number },
): Promise<DrainFigures> {
  const prefix = testPrefix(`bench-drain-${target}`);
  const output = await tempDir(`bench-drain-${target}`);
  const broker = await TestBroker.connect(url);
  try {
    await preloadBacklog({ url, prefix, shardsCount: 5, entries, perRequest });
    const env = {
      RABBITMQ_URL: url,
      QUEUE_PREFIX: prefix,
      DATA_OUTPUT_DIR: output.path,
      BATCH_SIZE: String(drainCase.batchSize),
      SINK_FSYNC: String(drainCase.fsync),
      CONSUMER_PORT: String(await freePort()),
      CONSUMER_HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
    };
    const startedAt = Date.now();
    const { child, processed } = start(target, env);
    try {
      await waitFor(async () => (await processed()) >= entries, {
        description: `${target} to drain ${entries} entries`,
        timeoutMs: 600_000,
        intervalMs: 50,
      });
      const wallSeconds = (Date.now() - startedAt) / 1000;
      const rss = await peakRssMb(child.pid ?? 0);
      const span = await fileSpanSeconds(output.path);
      return {
        target,
        ...drainCase,
        entries,
        entriesPerSecond: entries / span,
        wallSeconds,
        peakRssMb: rss,
      };
    } finally {
      child.kill('SIGKILL');
    }
  } finally {
    await broker.deleteQueues(prefix, 5);
    await broker.close();
    await output.remove();
  }
}

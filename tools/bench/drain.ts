import { mkdtemp, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { TestBroker, fetchWorkers, freePort, testPrefix, waitFor } from '@app/testing';
import { preloadBacklog } from './backlog';
import type { BenchBuild } from './build';
import type { Cleanup } from './cleanup';
import { BenchProcess } from './processes';

/** How often the writer's progress is read: the consumer's /workers, the loop's stdout line. */
const PROGRESS_INTERVAL_MS = 250;

/** `consumer-no-dedupe`: the consumer with its Dedupe provider overridden (--dedupe-off), for its cost. */
export type DrainTarget = 'consumer' | 'consumer-no-dedupe' | 'baseline';

export interface DrainCase {
  fsync: boolean;
  batchSize: number;
}

export function drainLabel({ fsync, batchSize }: DrainCase): string {
  return `fsync ${fsync ? 'on' : 'off'}, batch ${batchSize}`;
}

export interface DrainFigures extends DrainCase {
  target: DrainTarget;
  /** Which round of a multi-round run measured it. */
  round?: number;
  entries: number;
  /** Entries over the span from the first to the last completed file (see fileRate). */
  entriesPerSecond: number;
  /** The writer's own CPU time (all threads, user + system) per entry, boot left out. */
  cpuUsPerEntry?: number;
  /** From process start to the last entry written, boot included. */
  wallSeconds: number;
  peakRssMb: number;
}

/**
 * Entries per second from the first completed file to the last: the entries of every file but
 * the first over that span (files are of equal size but for the last of each shard), so that a
 * process's boot does not count. NaN with fewer than two files.
 */
async function fileRate(dir: string, entries: number): Promise<number> {
  let first = Number.POSITIVE_INFINITY;
  let last = 0;
  let files = 0;
  for (const name of await readdir(dir)) {
    if (!name.endsWith('.jsonl')) continue;
    const { mtimeMs } = await stat(join(dir, name));
    first = Math.min(first, mtimeMs);
    last = Math.max(last, mtimeMs);
    files++;
  }
  if (files < 2 || last === first) return Number.NaN;
  return (entries * ((files - 1) / files)) / ((last - first) / 1000);
}

function start(
  target: DrainTarget,
  env: Record<string, string>,
  { build, cleanup, cpuProfDir }: DrainOptions,
): { child: BenchProcess; processed: () => Promise<number> } {
  if (target !== 'baseline') {
    const main = target === 'consumer' ? build.consumerMain : build.consumerNoDedupe;
    const child = BenchProcess.start({ name: target, args: [main], env, cleanup, cpuProfDir });
    const processed = async () => {
      const { shards } = await fetchWorkers(`http://127.0.0.1:${env.CONSUMER_PORT}`);
      return shards.flatMap((s) => s.workers).reduce((sum, w) => sum + w.processed, 0);
    };
    return { child, processed };
  }
  let latest = 0;
  const child = BenchProcess.start({
    name: 'drain baseline',
    args: [build.drainBaseline],
    env,
    cleanup,
    cpuProfDir,
    onStdout: (chunk: Buffer) => {
      const match = /processed (\d+)\n$/.exec(chunk.toString());
      if (match) latest = Number(match[1]);
    },
  });
  return { child, processed: () => Promise.resolve(latest) };
}

export interface DrainOptions {
  url: string;
  entries: number;
  /** Entries per simulated request in the backlog. */
  perRequest?: number;
  shardsCount?: number;
  build: BenchBuild;
  cleanup: Cleanup;
  /**
   * The output folder is made in here and left for the caller to delete once the whole run is
   * over: ext4 allocates new inodes slowly for a minute or more after many were freed, so
   * deleting one run's 40,000 files would slow down the next run's file creation.
   */
  outputRoot: string;
  cpuProfDir?: string;
}

/** Preloads a backlog, starts `target` on it and measures how fast it drains into files. */
export async function measureDrain(
  target: DrainTarget,
  drainCase: DrainCase,
  options: DrainOptions,
): Promise<DrainFigures> {
  const { url, entries, perRequest = 100, shardsCount = 5, cleanup } = options;
  const prefix = testPrefix(`bench-drain-${target}`);
  const output = await mkdtemp(join(options.outputRoot, `drain-${target}-`));
  const broker = await TestBroker.connect(url);
  const deleteQueues = cleanup.add(`delete queues ${prefix}`, () => broker.deleteQueues(prefix, shardsCount));
  try {
    await preloadBacklog({ url, prefix, shardsCount, entries, perRequest });
    const env = {
      RABBITMQ_URL: url,
      QUEUE_PREFIX: prefix,
      SHARDS_COUNT: String(shardsCount),
      DATA_OUTPUT_DIR: output,
      BATCH_SIZE: String(drainCase.batchSize),
      SINK_FSYNC: String(drainCase.fsync),
      CONSUMER_PORT: String(await freePort()),
      CONSUMER_HOST: '127.0.0.1',
    };
    const startedAt = Date.now();
    const { child, processed } = start(target, env, options);
    try {
      // CPU time from the first entry written (boot left out) to the last, per entry.
      let first: { cpu?: number; processed: number } | undefined;
      const outcome = await waitFor(
        async () => {
          if (!child.running) return 'exited';
          const count = await processed();
          if (first === undefined && count > 0) first = { cpu: child.cpuSeconds(), processed: count };
          return count >= entries;
        },
        {
          description: `${target} to drain ${entries} entries`,
          timeoutMs: 600_000,
          // Only when to stop depends on it (the rate comes from the files' times), and each poll of
          // the consumer's /workers costs it CPU the loop's stdout line does not: about 3 % at 50 ms.
          intervalMs: PROGRESS_INTERVAL_MS,
        },
      );
      if (outcome === 'exited') child.assertRunning();
      const wallSeconds = (Date.now() - startedAt) / 1000;
      const rss = child.peakRssMb();
      const cpu = child.cpuSeconds();
      const cpuUsPerEntry =
        first?.cpu === undefined || cpu === undefined || entries === first.processed
          ? undefined
          : ((cpu - first.cpu) * 1e6) / (entries - first.processed);
      const entriesPerSecond = await fileRate(output, entries);
      return {
        target,
        ...drainCase,
        entries,
        entriesPerSecond,
        cpuUsPerEntry,
        wallSeconds,
        peakRssMb: rss,
      };
    } finally {
      // A CPU profile is written only on a clean exit; without one, there is nothing to wait for.
      await (options.cpuProfDir === undefined ? child.kill() : child.terminate());
    }
  } finally {
    await deleteQueues();
    await broker.close();
  }
}

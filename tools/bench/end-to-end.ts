/**
 * Time from the api's 201 to the entry's completed file, at a steady rate, with an api and a
 * writer running side by side: the built api and consumer with their default settings, or the
 * framework-free pair (api-baseline.ts + drain-baseline.ts, with the same batch size, flush age
 * and fsync). An entry is complete at its file's ctime, which the rename into place sets (the
 * mtime would leave out the fsync and the rename); the 201's arrival is taken on the same clock.
 */
import { mkdtemp, readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { type TestBroker, freePort, testPrefix, waitFor } from '@app/testing';
import type { BenchBuild } from './build';
import type { Cleanup } from './cleanup';
import { BenchProcess } from './processes';

export type EndToEndTarget = 'pipeline' | 'baseline';

export interface EndToEndOptions {
  build: BenchBuild;
  cleanup: Cleanup;
  broker: TestBroker;
  shardsCount: number;
  /** The output folder is made in here, for the caller to delete (see DrainOptions.outputRoot). */
  outputRoot: string;
  entriesPerSecond: number;
  entriesPerRequest: number;
  durationSeconds: number;
  cpuProfDir?: string;
}

export interface EndToEndFigures {
  target: EndToEndTarget;
  /** Entries answered 201 and found in a completed file. */
  entries: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Requests answered other than 201 (or not at all). */
  failedRequests: number;
  /** The rate actually sent, entries per second. */
  sentPerSecond: number;
}

interface Accepted {
  ids: string[];
  answeredAt: number;
}

/** The p-th percentile (0..100) of ascending `sorted`, nearest rank. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(rank, 1)) - 1];
}

/** Entries stamped with the last `shardsCount` whole seconds, so that every shard gets its share. */
function entriesNow(count: number, shardsCount: number): string {
  const now = Date.now();
  return JSON.stringify(
    Array.from({ length: count }, (_, i) => ({
      timestamp: new Date(now - (i % shardsCount) * 1000).toISOString(),
      value: `end-to-end ${i}`,
    })),
  );
}

async function post(url: string, body: string): Promise<Accepted | undefined> {
  try {
    const response = await fetch(`${url}/message`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    const answeredAt = Date.now();
    const json = (await response.json()) as { ids?: string[] };
    return response.status === 201 && Array.isArray(json.ids) ? { ids: json.ids, answeredAt } : undefined;
  } catch {
    return undefined;
  }
}

/** Sends requests at a fixed pace (open loop: a slow answer does not delay the next request). */
async function pacedLoad(url: string, options: EndToEndOptions): Promise<{ accepted: Accepted[]; failed: number }> {
  const requestsPerSecond = options.entriesPerSecond / options.entriesPerRequest;
  const total = Math.max(1, Math.round(requestsPerSecond * options.durationSeconds));
  const intervalMs = 1000 / requestsPerSecond;
  const startedAt = Date.now();
  const pending: Array<Promise<Accepted | undefined>> = [];
  for (let i = 0; i < total; i++) {
    const due = startedAt + i * intervalMs;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    pending.push(post(url, entriesNow(options.entriesPerRequest, options.shardsCount)));
  }
  const answers = await Promise.all(pending);
  const accepted = answers.filter((answer): answer is Accepted => answer !== undefined);
  return { accepted, failed: answers.length - accepted.length };
}

/** When each entry's file became complete, by entry id; reads only files it has not seen. */
class CompletedFiles {
  private readonly seen = new Set<string>();
  readonly completedAt = new Map<string, number>();

  constructor(private readonly dir: string) {}

  async scan(): Promise<number> {
    for (const name of await readdir(this.dir)) {
      if (!name.endsWith('.jsonl') || this.seen.has(name)) continue;
      this.seen.add(name);
      const path = join(this.dir, name);
      const [{ ctimeMs }, text] = await Promise.all([stat(path), readFile(path, 'utf8')]);
      for (const line of text.split('\n')) {
        if (line === '') continue;
        const { id } = JSON.parse(line) as { id: string };
        if (!this.completedAt.has(id)) this.completedAt.set(id, ctimeMs);
      }
    }
    return this.completedAt.size;
  }
}

/** Runs `target` at the configured rate and measures each accepted entry's time to its file. */
export async function measureEndToEnd(target: EndToEndTarget, options: EndToEndOptions): Promise<EndToEndFigures> {
  const { build, cleanup, broker, shardsCount, cpuProfDir } = options;
  const prefix = testPrefix(`bench-e2e-${target}`);
  const output = await mkdtemp(join(options.outputRoot, `e2e-${target}-`));
  const deleteQueues = cleanup.add(`delete queues ${prefix}`, () => broker.deleteQueues(prefix, shardsCount));
  // The apps' defaults, logging included (the benchmark's other phases run at LOG_LEVEL=warn).
  const env = { QUEUE_PREFIX: prefix, SHARDS_COUNT: String(shardsCount), LOG_LEVEL: 'info' };
  const apiPort = await freePort();
  const consumerPort = await freePort();
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  let writerReady = false;
  const processes: BenchProcess[] = [];
  try {
    const writer = BenchProcess.start({
      name: target === 'pipeline' ? 'consumer' : 'drain baseline',
      args: [target === 'pipeline' ? build.consumerMain : build.drainBaseline],
      env: { ...env, DATA_OUTPUT_DIR: output, CONSUMER_HOST: '127.0.0.1', CONSUMER_PORT: String(consumerPort) },
      cleanup,
      cpuProfDir,
      // The baseline prints `processed <n>` lines once it consumes.
      onStdout: target === 'baseline' ? () => (writerReady = true) : undefined,
    });
    processes.push(writer);
    const api = BenchProcess.start({
      name: target === 'pipeline' ? 'api' : 'api baseline',
      args: [target === 'pipeline' ? build.apiMain : build.apiBaseline],
      env: { ...env, API_HOST: '127.0.0.1', API_PORT: String(apiPort) },
      cleanup,
      cpuProfDir,
    });
    processes.push(api);
    await api.waitUntilHealthy(`${apiUrl}/health`);
    if (target === 'pipeline') await writer.waitUntilHealthy(`http://127.0.0.1:${consumerPort}/health`);
    else {
      const outcome = await waitFor(() => (!writer.running ? 'exited' : writerReady), {
        description: 'the drain baseline to consume',
        timeoutMs: 30_000,
      });
      if (outcome === 'exited') writer.assertRunning();
    }

    const startedAt = Date.now();
    const { accepted, failed } = await pacedLoad(apiUrl, options);
    const sentSeconds = (Date.now() - startedAt) / 1000;
    const ids = accepted.flatMap((answer) => answer.ids);
    const files = new CompletedFiles(output);
    const outcome = await waitFor(
      async () => (!writer.running ? 'exited' : (await files.scan()) >= ids.length || undefined),
      { description: `every accepted entry (${ids.length}) in a completed file`, timeoutMs: 30_000, intervalMs: 100 },
    );
    if (outcome === 'exited') writer.assertRunning();

    const latencies = accepted
      .flatMap(({ ids: batch, answeredAt }) =>
        batch.map((id) => (files.completedAt.get(id) ?? Number.NaN) - answeredAt),
      )
      .sort((a, b) => a - b);
    return {
      target,
      entries: latencies.length,
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
      maxMs: latencies[latencies.length - 1] ?? Number.NaN,
      failedRequests: failed,
      sentPerSecond: (ids.length + failed * options.entriesPerRequest) / sentSeconds,
    };
  } finally {
    await Promise.all(processes.map((child) => (cpuProfDir === undefined ? child.kill() : child.terminate())));
    await deleteQueues();
  }
}

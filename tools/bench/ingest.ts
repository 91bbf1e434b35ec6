/**
 * Entries per second through `POST /message`: the built api against the framework-free baseline
 * (tools/bench/baselines/api-baseline.ts), no consumer running. In a round every server runs at once,
 * each on its own port and queue prefix, and takes the load in turn, one request size after
 * another, with the order alternating: the broker's disk is part of every publish, and its speed
 * swings, so the figures to compare are measured next to each other.
 */
import autocannon from 'autocannon';
import {
  TestBroker,
  TestRedis,
  freePort,
  idempotencyNamespace,
  makeEntries,
  prefixQueueNames,
  testPrefix,
} from '@app/testing';
import type { Cleanup } from './cleanup';
import { BenchProcess } from './processes';

export interface IngestTarget {
  name: string;
  /** The script to run with node, e.g. a copy of dist/apps/api/main.js. */
  script: string;
  /** Extra environment, e.g. REDIS_URL. */
  env?: Record<string, string>;
  /** Every request gets an Idempotency-Key of its own (`--keys`), so none is a replay. */
  keyed?: boolean;
}

export interface IngestLoad {
  entriesPerRequest: number;
  connections: number;
  warmupSeconds: number;
  durationSeconds: number;
}

export interface IngestFigures {
  target: string;
  round: number;
  entriesPerRequest: number;
  entriesPerSecond: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** The server's own CPU time per answered request: steadier than throughput on a busy machine. */
  cpuUsPerRequest?: number;
  non2xx: number;
  errors: number;
  /** Messages the run left in the shard queues (purged after each load). */
  messagesQueued: number;
}

export interface IngestRoundOptions {
  round: number;
  broker: TestBroker;
  cleanup: Cleanup;
  shardsCount: number;
  cpuProfDir?: string;
  /** Called with each result as soon as it is measured. */
  onResult?: (figures: IngestFigures) => void;
}

/** One request body: `entries` entries a second apart, so every shard gets its share. */
export function requestBody(entries: number): string {
  return JSON.stringify(makeEntries(entries, 'benchmark entry', { stepMs: 1_000, startMs: 53_520 }));
}

/** Keys no earlier load used: a key seen before would be answered from the store, not published. */
let keySequence = 0;

function load(
  url: string,
  body: string,
  connections: number,
  seconds: number,
  keyed = false,
): Promise<autocannon.Result> {
  const run = `${process.pid}-${Date.now()}`;
  return autocannon({
    url: `${url}/message`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
    connections,
    duration: seconds,
    ...(keyed
      ? {
          requests: [
            {
              setupRequest: (request) => ({
                ...request,
                headers: { ...request.headers, 'idempotency-key': `bench-${run}-${++keySequence}` },
              }),
            },
          ],
        }
      : {}),
  });
}

interface Server {
  target: IngestTarget;
  process: BenchProcess;
  url: string;
  prefix: string;
}

/**
 * Starts every target, then measures each load on each of them in turn; returns one result per
 * target and load. The servers stop and their queues are deleted before it returns.
 */
export async function measureIngestRound(
  targets: readonly IngestTarget[],
  loads: readonly IngestLoad[],
  options: IngestRoundOptions,
): Promise<IngestFigures[]> {
  const { broker, cleanup, shardsCount, round } = options;
  const servers: Server[] = [];
  const releases: Array<() => Promise<void>> = [];
  try {
    for (const target of targets) {
      const prefix = testPrefix(`bench-ingest-${target.name}`);
      releases.push(cleanup.add(`delete queues ${prefix}`, () => broker.deleteQueues(prefix, shardsCount)));
      const redisUrl = target.env?.REDIS_URL;
      if (redisUrl !== undefined) {
        // The keys the load left in Redis, each kept for IDEMPOTENCY_TTL_S otherwise.
        releases.push(
          cleanup.add(`delete Redis keys of ${prefix}`, async () => {
            const redis = await TestRedis.connect(redisUrl);
            await redis.deleteNamespace(idempotencyNamespace(prefix)).finally(() => redis.close());
          }),
        );
      }
      const port = await freePort();
      const child = BenchProcess.start({
        name: `ingest ${target.name}`,
        args: [target.script],
        env: {
          QUEUE_PREFIX: prefix,
          SHARDS_COUNT: String(shardsCount),
          API_HOST: '127.0.0.1',
          API_PORT: String(port),
          ...target.env,
        },
        cleanup,
        cpuProfDir: options.cpuProfDir,
      });
      const server = { target, process: child, url: `http://127.0.0.1:${port}`, prefix };
      servers.push(server);
    }
    // They boot side by side; the measuring is one at a time.
    await Promise.all(servers.map((server) => server.process.waitUntilHealthy(`${server.url}/health`)));
    const results: IngestFigures[] = [];
    for (const [index, spec] of loads.entries()) {
      const body = requestBody(spec.entriesPerRequest);
      // Alternate who goes first, by round and by load.
      const order = (round + index) % 2 === 1 ? servers : [...servers].reverse();
      for (const server of order) {
        const figures = await measureLoad(server, body, spec, options);
        results.push(figures);
        options.onResult?.(figures);
      }
    }
    return results;
  } finally {
    await Promise.all(servers.map((server) => server.process.terminate()));
    for (const release of releases) await release();
  }
}

async function measureLoad(
  server: Server,
  body: string,
  spec: IngestLoad,
  { broker, shardsCount, round }: IngestRoundOptions,
): Promise<IngestFigures> {
  const keyed = server.target.keyed === true;
  if (spec.warmupSeconds > 0) await load(server.url, body, spec.connections, spec.warmupSeconds, keyed);
  server.process.assertRunning();
  const cpuBefore = server.process.cpuSeconds();
  const result = await load(server.url, body, spec.connections, spec.durationSeconds, keyed);
  const cpuAfter = server.process.cpuSeconds();
  server.process.assertRunning();
  let messagesQueued = 0;
  for (const queue of prefixQueueNames(server.prefix, shardsCount)) messagesQueued += await broker.purge(queue);
  const answered = result['2xx'];
  return {
    target: server.target.name,
    round,
    entriesPerRequest: spec.entriesPerRequest,
    entriesPerSecond: (answered * spec.entriesPerRequest) / result.duration,
    requestsPerSecond: answered / result.duration,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    cpuUsPerRequest:
      cpuBefore === undefined || cpuAfter === undefined || answered === 0
        ? undefined
        : ((cpuAfter - cpuBefore) * 1e6) / answered,
    non2xx: result.non2xx,
    errors: result.errors,
    messagesQueued,
  };
}

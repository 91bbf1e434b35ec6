import { readApiConfig, readRuntimeConfig } from '@app/config';
import { IDEMPOTENCY_EXPIRES_HEADER, SHARDS_COUNT_HEADER, type WireEntry, encodeShardPackets } from '@app/contracts';
import { shardOf, shardQueueName } from '@app/sharding';
import {
  type AppProcess,
  countIds,
  fetchMetrics,
  metricValue,
  readBatchFiles,
  waitFor,
  writtenCount,
} from '@app/testing';
import { FaultCase, duplicates, pick, summary } from './fault-kit';

/**
 * The contract's "Memory is bounded" promise: a backlog of requests of MAX_ENTRIES entries that
 * all fall in one shard, published before the consumer starts, drained by a consumer with the
 * defaults. The full promise is 200 such requests (2,000,000 entries); at the defaults (batch 5,
 * fsync) this machine drained about 2,800 entries/s with the other suites beside it, so the full
 * backlog would take about 12 minutes. The case keeps 15 requests (150,000 entries: about 55 s of drain, 85 s in all):
 * still three times the 50,000 entries PREFETCH (200 messages of at most 250) lets a shard hold,
 * which is what bounds the RSS whatever the backlog's size (docs/faults.md).
 */
const REQUESTS = pick(15, 6);
const ENTRIES_PER_REQUEST = readApiConfig({}).maxEntries;
const SHUTDOWN_TIMEOUT_MS = readRuntimeConfig({}).shutdownTimeoutMs;
const RSS_LIMIT_MB = 256;
const SHARDS = 5;
/** Every entry falls in this second, so in shard 0 of 5. */
const SECOND = '2019-10-12T08:10:50';

/** The entries of request `r`, as the api would publish them: uuid-shaped ids, one shard. */
function requestEntries(r: number): WireEntry[] {
  return Array.from({ length: ENTRIES_PER_REQUEST }, (_, i) => ({
    id: `00000000-0000-4000-8000-${(r * ENTRIES_PER_REQUEST + i).toString(16).padStart(12, '0')}`,
    timestamp: `${SECOND}.${String(i % 1000).padStart(3, '0')}Z`,
    value: `backlog request ${r} entry ${i}`,
  }));
}

/** Samples a process's resident memory every `intervalMs` until stopped; the peak of the samples and VmHWM. */
class RssSampler {
  private readonly samples: number[] = [];
  private peak = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly app: AppProcess,
    intervalMs = 200,
  ) {
    this.take();
    this.timer = setInterval(() => this.take(), intervalMs);
  }

  stop(): { samples: number; maxMb: number; peakMb: number } {
    clearInterval(this.timer);
    return { samples: this.samples.length, maxMb: Math.max(0, ...this.samples), peakMb: this.peak };
  }

  private take(): void {
    if (!this.app.running) return;
    try {
      const { rss, peak } = this.app.memoryMb();
      if (Number.isFinite(rss)) this.samples.push(rss);
      if (Number.isFinite(peak)) this.peak = Math.max(this.peak, peak);
    } catch {
      // It exited between the check and the read.
    }
  }
}

async function writtenBy(consumerUrl: string): Promise<number> {
  return metricValue(await fetchMetrics(consumerUrl), 'consumer_entries_written_total') ?? 0;
}

describe('a heavy one-shard backlog (the contract: memory is bounded)', () => {
  const run = new FaultCase();

  afterEach(() => run.dispose());

  it(`drains ${REQUESTS} requests of MAX_ENTRIES in one shard under ${RSS_LIMIT_MB} MB RSS, stops on SIGTERM within SHUTDOWN_TIMEOUT_MS with exit 0, and loses and duplicates nothing after a restart`, async () => {
    expect(shardOf(`${SECOND}Z`, SHARDS)).toBe(0);
    const pipeline = await run.pipelineFor('faults-consumer-memory', { shardsCount: SHARDS });
    // The api declares the topology, as it does in production before any consumer runs.
    const api = await pipeline.startApi();
    expect(await api.app.stop('SIGTERM')).toBe(0);

    const publishStarted = Date.now();
    const expected = new Set<string>();
    const packets = function* () {
      for (let r = 0; r < REQUESTS; r++) {
        const entries = requestEntries(r);
        for (const entry of entries) expected.add(entry.id);
        yield* encodeShardPackets(0, entries);
      }
    };
    const messages = await pipeline.broker.publishMany(shardQueueName(pipeline.prefix, 0), packets(), {
      contentType: 'application/json',
      headers: { [SHARDS_COUNT_HEADER]: SHARDS },
    });
    const publishMs = Date.now() - publishStarted;
    const total = REQUESTS * ENTRIES_PER_REQUEST;
    expect(expected.size).toBe(total);

    // First consumer, every setting at its default: drain a third, then SIGTERM.
    const drainStarted = Date.now();
    const first = await pipeline.startConsumer();
    const firstRss = new RssSampler(first.app);
    await waitFor(async () => (await writtenBy(first.url)) >= total / 3, {
      description: `a third of ${total} entries written by the first consumer`,
      timeoutMs: 60_000,
      intervalMs: 250,
    });
    const firstRate = (await writtenBy(first.url)) / ((Date.now() - drainStarted) / 1000);
    const stopStarted = Date.now();
    const exitCode = await first.app.stop('SIGTERM', SHUTDOWN_TIMEOUT_MS + 10_000);
    const stopMs = Date.now() - stopStarted;
    const firstMemory = firstRss.stop();
    const writtenAtStop = await writtenCount(pipeline.dir);

    // Second consumer: everything else.
    const second = await pipeline.startConsumer();
    const secondRss = new RssSampler(second.app);
    await waitFor(async () => writtenAtStop + (await writtenBy(second.url)) >= total, {
      description: `all ${total} entries written`,
      timeoutMs: 90_000,
      intervalMs: 250,
    });
    const drainMs = Date.now() - drainStarted;
    const secondMemory = secondRss.stop();
    const counts = countIds(await readBatchFiles(pipeline.dir));
    const lost = [...expected].filter((id) => !counts.has(id)).length;
    const strangers = [...counts.keys()].filter((id) => !expected.has(id)).length;
    summary('heavy one-shard backlog', {
      requests: REQUESTS,
      entries: total,
      messages,
      publishMs,
      firstEntriesPerS: Math.round(firstRate),
      writtenAtStop,
      sigtermExit: exitCode,
      stopMs,
      firstRssMaxMb: firstMemory.maxMb,
      firstRssPeakMb: firstMemory.peakMb,
      firstRssSamples: firstMemory.samples,
      secondRssMaxMb: secondMemory.maxMb,
      secondRssPeakMb: secondMemory.peakMb,
      drainMs,
      lost,
      duplicatedIds: duplicates(counts).ids,
    });

    expect(messages).toBe(REQUESTS * Math.ceil(ENTRIES_PER_REQUEST / 250));
    expect(firstMemory.samples).toBeGreaterThanOrEqual(10);
    expect(firstMemory.maxMb).toBeLessThan(RSS_LIMIT_MB);
    expect(firstMemory.peakMb).toBeLessThan(RSS_LIMIT_MB);
    expect(secondMemory.maxMb).toBeLessThan(RSS_LIMIT_MB);
    expect(secondMemory.peakMb).toBeLessThan(RSS_LIMIT_MB);
    // Stopped mid-drain: some written, not all, and a clean exit in time.
    expect(writtenAtStop).toBeGreaterThanOrEqual(total / 3);
    expect(writtenAtStop).toBeLessThan(total);
    expect(exitCode).toBe(0);
    expect(stopMs).toBeLessThan(SHUTDOWN_TIMEOUT_MS);
    expect(lost).toBe(0);
    expect(strangers).toBe(0);
    expect(duplicates(counts).ids).toBe(0);
  }, 240_000);

  it(`drains keyed requests of MAX_ENTRIES spread over every shard under ${RSS_LIMIT_MB} MB RSS: each entry counts in the window, and the ledger index keeps no id strings`, async () => {
    // The api packs them into messages of 250 entries (about 25 KiB): by bytes alone each shard
    // held about 160 of them, 200,000 entries in all, each claimed while held; and every keyed id
    // stays in the ledger index until its key expires (docs/consumer-memory.md).
    const requests = pick(20, 8);
    const pipeline = await run.pipelineFor('faults-consumer-keyed-every-shard', { shardsCount: SHARDS });
    const api = await pipeline.startApi();
    expect(await api.app.stop('SIGTERM')).toBe(0);

    const expected = new Set<string>();
    const byShard = Array.from({ length: SHARDS }, (): WireEntry[] => []);
    for (let r = 0; r < requests; r++) {
      // As the api's ids of a keyed request: a UUIDv8 seed per request, then the entry's index.
      const seed = `0000${r.toString(16).padStart(4, '0')}-0000-8000-8000-0000`;
      for (let i = 0; i < ENTRIES_PER_REQUEST; i++) {
        const n = r * ENTRIES_PER_REQUEST + i;
        const timestamp = `2019-10-12T08:10:${String(n % 60).padStart(2, '0')}.${String(n % 1000).padStart(3, '0')}Z`;
        const entry = { id: seed + i.toString(16).padStart(8, '0'), timestamp, value: `request ${r} entry ${i}` };
        expected.add(entry.id);
        byShard[shardOf(timestamp, SHARDS)].push(entry);
      }
    }
    const headers = { [SHARDS_COUNT_HEADER]: SHARDS, [IDEMPOTENCY_EXPIRES_HEADER]: Date.now() + 86_400_000 };
    let messages = 0;
    for (let shard = 0; shard < SHARDS; shard++) {
      messages += await pipeline.broker.publishMany(
        shardQueueName(pipeline.prefix, shard),
        encodeShardPackets(shard, byShard[shard]),
        { contentType: 'application/json', headers },
      );
    }
    const total = requests * ENTRIES_PER_REQUEST;

    // What a shard holds does not depend on how fast it writes (the window fills at once): files of
    // 500 without fsync keep the case to seconds; the defaults would take minutes here.
    const drainStarted = Date.now();
    const consumer = await pipeline.startConsumer({ BATCH_SIZE: '500', SINK_FSYNC: 'false' });
    const rss = new RssSampler(consumer.app, 100);
    await waitFor(async () => (await writtenBy(consumer.url)) >= total, {
      description: `all ${total} entries written`,
      timeoutMs: 60_000,
      intervalMs: 250,
    });
    const drainMs = Date.now() - drainStarted;
    const memory = rss.stop();
    const counts = countIds(await readBatchFiles(pipeline.dir));
    const lost = [...expected].filter((id) => !counts.has(id)).length;
    summary('keyed requests of MAX_ENTRIES over every shard', {
      requests,
      entries: total,
      messages,
      drainMs,
      rssMaxMb: memory.maxMb,
      rssPeakMb: memory.peakMb,
      rssSamples: memory.samples,
      lost,
      duplicatedIds: duplicates(counts).ids,
    });
    expect(memory.samples).toBeGreaterThanOrEqual(10);
    expect(memory.maxMb).toBeLessThan(RSS_LIMIT_MB);
    expect(memory.peakMb).toBeLessThan(RSS_LIMIT_MB);
    expect(lost).toBe(0);
    expect(duplicates(counts).ids).toBe(0);
  }, 240_000);

  it(`drains a backlog of entries as large as MAX_BODY_BYTES lets them be, in every shard, under ${RSS_LIMIT_MB} MB RSS`, async () => {
    // PREFETCH counts deliveries: 200 of these per shard would be a gigabyte (docs/consumer-memory.md).
    const requests = pick(250, 100);
    const maxBodyBytes = readApiConfig({}).maxBodyBytes;
    const pipeline = await run.pipelineFor('faults-consumer-large-values', { shardsCount: SHARDS });
    const api = await pipeline.startApi();
    expect(await api.app.stop('SIGTERM')).toBe(0);

    const expected = new Set<string>();
    /** Request r's one entry: the largest a request of MAX_BODY_BYTES can hold, [{"timestamp":"…","value":"…"}]. */
    const entryOf = (r: number): WireEntry => {
      const timestamp = `2019-10-12T08:10:${String(r % 60).padStart(2, '0')}.000Z`;
      const value = 'x'.repeat(maxBodyBytes - JSON.stringify([{ timestamp, value: '' }]).length);
      return { id: `00000000-0000-4000-9000-${r.toString(16).padStart(12, '0')}`, timestamp, value };
    };
    let messages = 0;
    for (let shard = 0; shard < SHARDS; shard++) {
      const packets = function* () {
        for (let r = shard; r < requests; r += SHARDS) {
          const entry = entryOf(r);
          expect(shardOf(entry.timestamp, SHARDS)).toBe(shard);
          expected.add(entry.id);
          yield* encodeShardPackets(shard, [entry]);
        }
      };
      messages += await pipeline.broker.publishMany(shardQueueName(pipeline.prefix, shard), packets(), {
        contentType: 'application/json',
        headers: { [SHARDS_COUNT_HEADER]: SHARDS },
      });
    }

    const drainStarted = Date.now();
    const consumer = await pipeline.startConsumer();
    const rss = new RssSampler(consumer.app, 100);
    await waitFor(async () => (await writtenBy(consumer.url)) >= requests, {
      description: `all ${requests} large entries written`,
      timeoutMs: 120_000,
      intervalMs: 250,
    });
    const drainMs = Date.now() - drainStarted;
    const memory = rss.stop();
    const counts = countIds(await readBatchFiles(pipeline.dir));
    summary('large entries in every shard', {
      requests,
      entryKb: Math.round(maxBodyBytes / 1024),
      messages,
      drainMs,
      rssMaxMb: memory.maxMb,
      rssPeakMb: memory.peakMb,
      rssSamples: memory.samples,
      lost: [...expected].filter((id) => !counts.has(id)).length,
      duplicatedIds: duplicates(counts).ids,
    });
    expect(messages).toBe(requests);
    expect(memory.samples).toBeGreaterThanOrEqual(10);
    expect(memory.maxMb).toBeLessThan(RSS_LIMIT_MB);
    expect(memory.peakMb).toBeLessThan(RSS_LIMIT_MB);
    expect([...expected].filter((id) => !counts.has(id))).toEqual([]);
    expect(duplicates(counts).ids).toBe(0);
  }, 240_000);
});

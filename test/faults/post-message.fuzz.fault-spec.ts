import fc from 'fast-check';
import { type WireEntry, encodeShardPackets } from '@app/contracts';
import { shardOf } from '@app/sharding';
import { Pipeline, SlowClient, TestBroker, healthStatus, testPrefix, waitFor } from '@app/testing';
import { TestApi } from '../../apps/api/test/test-api';
import { ShardPublisher } from '../../apps/api/src/broker/shard-publisher.service';
import { pick, summary } from './fault-kit';
import {
  type Candidate,
  type Limits,
  batchText,
  deepBody,
  expectedStatuses,
  hostileBatch,
  nearValidBatch,
} from './post-message.fuzz.arbitraries';

/** Fixed, so a failure replays; FAULTS_SEED tries another. fast-check prints the seed and path of any counterexample. */
const SEED = Number(process.env.FAULTS_SEED ?? 20_191_012);
const SHARDS = 5;
const LIMITS: Limits = { maxEntries: 50, maxBodyBytes: 1_048_576 };
const API_ENV = { MAX_ENTRIES: String(LIMITS.maxEntries), MAX_BODY_BYTES: String(LIMITS.maxBodyBytes) };

/**
 * fast-check's failure report with the counterexample cut short (a huge value would flood the log),
 * still naming the seed and path that replay it.
 */
const shortReport: fc.UniversalPlugin = () => ({
  onAllRunsComplete: (details) => {
    if (!details.failed) return;
    const shown = fc.stringify(details.counterexample);
    const error =
      details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
    throw new Error(
      `property failed after ${details.numRuns} runs (seed ${details.seed}, path "${details.counterexamplePath ?? ''}", ` +
        `${details.numShrinks} shrinks): ${error}\ncounterexample (${shown.length} characters): ` +
        (shown.length > 2_000 ? `${shown.slice(0, 2_000)}...` : shown),
      { cause: details.errorInstance },
    );
  },
});

const runs = (numRuns: number) => ({ seed: SEED, numRuns, noDefaultPlugins: true, plugins: [shortReport] });

/** The shards a 201 for `body` publishes to. */
function shardsOf(body: unknown): number {
  if (!Array.isArray(body)) return 0;
  return new Set(body.map((entry: { timestamp: string }) => shardOf(entry.timestamp, SHARDS))).size;
}

/** The messages a 201 for `body` publishes: its shards' entries, split as the contract splits them. */
function messagesOf(body: unknown): number {
  if (!Array.isArray(body)) return 0;
  const byShard = new Map<number, WireEntry[]>();
  for (const { timestamp, value } of body as { timestamp: string; value?: string | null }[]) {
    // Any id of a UUID's length encodes to the same size.
    const wire = value == null ? { id: UUID_SIZED, timestamp } : { id: UUID_SIZED, timestamp, value };
    const shard = shardOf(timestamp, SHARDS);
    byShard.set(shard, [...(byShard.get(shard) ?? []), wire]);
  }
  return [...byShard].reduce((sum, [shard, entries]) => sum + encodeShardPackets(shard, entries).length, 0);
}

const UUID_SIZED = '00000000-0000-4000-8000-000000000000';

/**
 * A 400 for a modelled batch names only entries the model calls invalid (or unsure), each message
 * `<index>.<field> ...` or `<index> must ...`; at most 100, then `and N more`; and when none were
 * left out, every invalid entry is named.
 */
function expectMessagesNameTheEntries(batch: Candidate[], messages: unknown): void {
  expect(Array.isArray(messages)).toBe(true);
  const list = messages as string[];
  const more = list.length > 0 && /^and \d+ more$/.test(list[list.length - 1]);
  const named = list.slice(0, more ? -1 : undefined).map((message) => Number(/^(\d+)[. ]/.exec(message)?.[1]));
  expect(named.length).toBeLessThanOrEqual(100);
  const faulty = batch.flatMap((c, index) => (c.verdict === 'valid' ? [] : [index]));
  expect(named.filter((index) => !faulty.includes(index))).toEqual([]);
  if (!more) {
    const invalid = batch.flatMap((c, index) => (c.verdict === 'invalid' ? [index] : []));
    expect(invalid.filter((index) => !named.includes(index))).toEqual([]);
  }
}

interface Tally {
  runs: number;
  byStatus: Record<number, number>;
  published: number;
  maxBodyBytes: number;
}

const newTally = (): Tally => ({ runs: 0, byStatus: {}, published: 0, maxBodyBytes: 0 });

function record(tally: Tally, status: number, bytes: number): void {
  tally.runs++;
  tally.byStatus[status] = (tally.byStatus[status] ?? 0) + 1;
  tally.maxBodyBytes = Math.max(tally.maxBodyBytes, bytes);
}

const showStatuses = (tally: Tally) =>
  Object.entries(tally.byStatus)
    .map(([status, count]) => `${status}:${count}`)
    .join(',');

/** How often each reason other than 'valid' came up. */
function countReasons(reasons: Map<string, number>, batch: Candidate[]): void {
  for (const { why } of batch) if (why !== 'valid') reasons.set(why, (reasons.get(why) ?? 0) + 1);
}

describe('POST /message under property-based fuzzing (fast-check)', () => {
  const prefix = testPrefix('faults-fuzz');
  let broker: TestBroker;
  let api: TestApi;
  let publish: jest.SpyInstance;

  async function queued(): Promise<number> {
    const counts = await broker.countAll(prefix, SHARDS);
    return Object.values(counts).reduce((sum, count) => sum + count, 0);
  }

  /**
   * POSTs `payload` in-process and checks the invariants: never a 5xx, nothing published for a 4xx,
   * a 201 publishes each shard's entries in the messages the contract splits them into; with a `batch` model, exactly the status it gives and, for a
   * 400, messages that name its invalid entries.
   */
  async function check(tally: Tally, payload: string, model: { batch?: Candidate[]; expected?: number[] } = {}) {
    const before = await queued();
    publish.mockClear();
    const response = await api.post(payload);
    const bytes = Buffer.byteLength(payload);
    record(tally, response.statusCode, bytes);
    const after = await queued();
    expect(response.statusCode).toBeLessThan(500);
    const expected = model.batch === undefined ? model.expected : expectedStatuses(model.batch, bytes, LIMITS);
    if (expected !== undefined) expect(expected).toContain(response.statusCode);
    if (response.statusCode === 201) {
      const body: unknown = JSON.parse(payload);
      const { accepted, ids } = response.json<{ accepted: number; ids: string[] }>();
      expect(Array.isArray(body) && accepted === body.length && new Set(ids).size === body.length).toBe(true);
      expect(publish).toHaveBeenCalledTimes(shardsOf(body));
      expect(after - before).toBe(messagesOf(body));
      tally.published += after - before;
    } else {
      expect(response.statusCode).toBeGreaterThanOrEqual(400);
      // Nothing published for a 4xx: not a call, not a message.
      expect(publish).not.toHaveBeenCalled();
      expect(after).toBe(before);
    }
    if (response.statusCode === 400 && model.batch !== undefined) {
      expectMessagesNameTheEntries(model.batch, response.json<{ message: unknown }>().message);
    }
  }

  beforeAll(async () => {
    broker = await TestBroker.connect();
    api = await TestApi.start({ QUEUE_PREFIX: prefix, SHARDS_COUNT: String(SHARDS), API_TOKEN: '', ...API_ENV });
    await api.waitForHealth(200);
    publish = jest.spyOn(api.app.get(ShardPublisher), 'publish');
    console.log(`[faults] fuzz seed ${SEED} (set FAULTS_SEED to try another)`);
  });

  afterAll(async () => {
    await api?.close();
    await broker?.deleteQueues(prefix, SHARDS);
    await broker?.close();
  });

  it('near-valid entries: the answer the contract gives, never a 5xx, never a publish after a 4xx', async () => {
    const tally = newTally();
    const reasons = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(nearValidBatch(LIMITS.maxEntries), async (batch) => {
        countReasons(reasons, batch);
        await check(tally, batchText(batch), { batch });
      }),
      runs(pick(400, 120)),
    );
    summary('fuzz near-valid entries', {
      seed: SEED,
      runs: tally.runs,
      statuses: showStatuses(tally),
      mutationsTried: reasons.size,
      messagesPublished: tally.published,
      largestBodyKB: Math.round(tally.maxBodyBytes / 1024),
    });
    expect(tally.byStatus[201]).toBeGreaterThan(0);
    expect(tally.byStatus[400]).toBeGreaterThan(0);
    expect(tally.byStatus[413]).toBeGreaterThan(0);
  }, 240_000);

  it('depth, key count, prototype keys, long strings, numbers: a 400 naming the entries, or 413', async () => {
    const tally = newTally();
    const reasons = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(hostileBatch, async (batch) => {
        countReasons(reasons, batch);
        await check(tally, batchText(batch), { batch });
      }),
      runs(pick(150, 40)),
    );
    summary('fuzz hostile shapes', {
      seed: SEED,
      runs: tally.runs,
      statuses: showStatuses(tally),
      shapesTried: reasons.size,
      largestBodyKB: Math.round(tally.maxBodyBytes / 1024),
    });
    expect(reasons.size).toBeGreaterThanOrEqual(pick(10, 6));
    expect(tally.byStatus[400]).toBeGreaterThan(0);
  }, 240_000);

  it('arbitrary JSON, deep bodies and arbitrary text: never a 5xx, never a publish after a 4xx', async () => {
    const tally = newTally();
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.jsonValue().map((value) => JSON.stringify(value) ?? 'null'),
          deepBody,
        ),
        (text) => {
          const value: unknown = JSON.parse(text);
          const notABatch = !Array.isArray(value) || value.length === 0;
          return check(tally, text, { expected: notABatch ? [400] : undefined });
        },
      ),
      runs(pick(300, 80)),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string(),
          fc.string({ unit: 'binary' }),
          fc.json().map((text) => text.slice(0, -1)),
        ),
        async (text) => {
          let parsed = true;
          try {
            JSON.parse(text);
          } catch {
            parsed = false;
          }
          await check(tally, text, { expected: parsed ? undefined : [400] });
        },
      ),
      runs(pick(200, 50)),
    );
    const health = await api.healthStatus();
    summary('fuzz arbitrary JSON and text', { seed: SEED, runs: tally.runs, statuses: showStatuses(tally), health });
    expect(health).toBe(200);
  }, 240_000);
});

describe('POST /message fuzzed over HTTP against the built api process', () => {
  let pipeline: Pipeline | undefined;

  afterAll(async () => pipeline?.dispose());

  /**
   * The status of POST `payload`, or a failure: a reset or a hang is never a status. A body over
   * MAX_BODY_BYTES is sent as curl sends a large one: the head first, and the body only if no
   * answer comes, since the api answers 413 on the Content-Length and closes the connection while
   * a client that sends on would still be writing (and fetch then sees EPIPE, not the 413).
   */
  async function post(url: string, payload: string): Promise<number> {
    const bytes = Buffer.byteLength(payload);
    if (bytes > LIMITS.maxBodyBytes) {
      const client = await SlowClient.connect(url);
      try {
        client.write(SlowClient.postHead(bytes));
        await waitFor(() => client.status !== undefined || client.isClosed, {
          description: `an answer to the head of a ${bytes}-byte body`,
          timeoutMs: 10_000,
          intervalMs: 5,
        });
        if (client.status === undefined) throw new Error(`the api closed without answering a ${bytes}-byte head`);
        return client.status;
      } finally {
        client.destroy();
      }
    }
    const response = await fetch(`${url}/message`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: payload,
      signal: AbortSignal.timeout(10_000),
    });
    await response.arrayBuffer();
    return response.status;
  }

  it('the process answers every body below 500, publishes nothing for a 4xx, and stays up', async () => {
    pipeline = await Pipeline.create('faults-fuzz-http', { shardsCount: SHARDS });
    const api = await pipeline.startApi(API_ENV);
    const { broker, prefix } = pipeline;
    const queued = async () => Object.values(await broker.countAll(prefix, SHARDS)).reduce((sum, n) => sum + n, 0);
    const tally = newTally();
    const bodies = fc.oneof(
      nearValidBatch(LIMITS.maxEntries).map(batchText),
      hostileBatch.map(batchText),
      deepBody,
      fc.jsonValue().map((value) => JSON.stringify(value) ?? 'null'),
      fc.string({ unit: 'binary' }),
    );
    await fc.assert(
      fc.asyncProperty(bodies, async (payload) => {
        const before = await queued();
        const status = await post(api.url, payload);
        record(tally, status, Buffer.byteLength(payload));
        expect(status).toBeGreaterThanOrEqual(200);
        expect(status).toBeLessThan(500);
        if (status !== 201) expect(await queued()).toBe(before);
      }),
      runs(pick(150, 40)),
    );
    const health = await healthStatus(api.url);
    summary('fuzz over HTTP', {
      seed: SEED,
      runs: tally.runs,
      statuses: showStatuses(tally),
      health,
      running: api.app.running,
    });
    expect(api.app.running).toBe(true);
    expect(health).toBe(200);
  }, 240_000);
});

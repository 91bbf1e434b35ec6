import type { ShardPacket } from '@app/contracts';
import { assertTopology } from '@app/rabbitmq';
import { shardQueueName } from '@app/sharding';
import {
  type Pipeline,
  TestRedis,
  countIds,
  idempotencyNamespace,
  spreadEntries,
  testRedisUrl,
  timestampInShard,
  waitFor,
  waitForAllWritten,
  waitForHealth,
  withDeadline,
} from '@app/testing';
import { CASE_TIMEOUT_MS, FaultCase, duplicates, holdFault, summary } from './fault-kit';

const SHARDS = 3;
const PUBLISH_TIMEOUT_MS = 1_000;
const KEY = 'idempotency-key';

interface Answer {
  status: number;
  body: string;
  replayed: boolean;
}

/** POSTs `entries` to `<url>/message` with `key`; a network failure is status 0. */
async function post(url: string, entries: unknown[], key: string): Promise<Answer> {
  try {
    const response = await fetch(`${url}/message`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', [KEY]: key },
      body: JSON.stringify(entries),
      signal: AbortSignal.timeout(5 * PUBLISH_TIMEOUT_MS),
    });
    return {
      status: response.status,
      body: await response.text(),
      replayed: response.headers.get('idempotent-replayed') === 'true',
    };
  } catch {
    return { status: 0, body: '', replayed: false };
  }
}

describe('Idempotency-Key through faults: every repeat answered as the first, nothing lost', () => {
  const run = new FaultCase();
  let redis: TestRedis;
  const namespaces: string[] = [];

  beforeAll(async () => {
    redis = await TestRedis.connect();
  });

  afterEach(async () => {
    await run.dispose();
    for (const namespace of namespaces.splice(0)) await redis.deleteNamespace(namespace);
  });

  afterAll(() => redis?.close());

  async function pipelineFor(name: string): Promise<Pipeline> {
    const pipeline = await run.pipelineFor(name, { shardsCount: SHARDS });
    namespaces.push(idempotencyNamespace(pipeline.prefix));
    return pipeline;
  }

  /** The copies of each id in the files, the ids missing, and a line for the summary. */
  async function tally(pipeline: Pipeline, ids: string[]) {
    const files = await waitForAllWritten(pipeline.dir, ids, 30_000);
    const counts = countIds(files);
    return { counts, lost: ids.filter((id) => !counts.has(id)).length, dup: duplicates(counts) };
  }

  it(
    'broker cut mid-stream, clients retrying every 503 with their key until 201: same answers, nothing lost',
    async () => {
      const pipeline = await pipelineFor('faults-idem-cut');
      const link = await run.brokerProxy();
      const api = await pipeline.startApi({
        RABBITMQ_URL: link.url,
        REDIS_URL: testRedisUrl(),
        PUBLISH_TIMEOUT_MS: String(PUBLISH_TIMEOUT_MS),
      });
      await pipeline.startConsumer({ BATCH_FLUSH_MS: '200', PREFETCH: '20' });

      const CLIENTS = 6;
      const REQUESTS = 15;
      const firstAnswer = new Map<string, string>();
      const mismatched: string[] = [];
      let attempts = 0;
      let unavailable = 0;
      let conflicts = 0;
      let stop = false;
      /** One client: its requests one after the other, each sent again on anything but a 201. */
      const client = async (c: number) => {
        for (let r = 0; r < REQUESTS && !stop; r++) {
          const key = `client-${c}-request-${r}`;
          const entries = spreadEntries(8, key);
          for (;;) {
            attempts++;
            const answer = await post(api.url, entries, key);
            if (answer.status === 201) {
              firstAnswer.set(key, answer.body);
              break;
            }
            if (answer.status === 503) unavailable++;
            else if (answer.status === 409) conflicts++;
            else if (answer.status !== 0) throw new Error(`${key}: unexpected ${answer.status} ${answer.body}`);
            await holdFault(100);
          }
          // A lost 201 is a repeat after the answer: the same body, said to be replayed.
          const again = await post(api.url, entries, key);
          if (again.status !== 201 || !again.replayed || again.body !== firstAnswer.get(key)) mismatched.push(key);
        }
      };
      const clients = Array.from({ length: CLIENTS }, (_, c) => client(c));
      await waitFor(() => firstAnswer.size >= 15, { description: '15 keys answered 201 before the cut' });
      link.proxy.cut();
      await waitForHealth(api.url, 503, 'api', 5_000);
      await holdFault(2_000);
      link.proxy.restore();
      await withDeadline(Promise.all(clients), 60_000, 'every client to get its 201s').finally(() => {
        stop = true;
      });

      const ids = [...firstAnswer.values()].flatMap((body) => (JSON.parse(body) as { ids: string[] }).ids);
      const { counts, lost, dup } = await tally(pipeline, ids);
      summary('idempotency: broker cut, clients retrying with their key', {
        keys: firstAnswer.size,
        attempts,
        status503: unavailable,
        status409: conflicts,
        answersDiffering: mismatched.length,
        entries: ids.length,
        lost,
        duplicatedIds: dup.ids,
        extraCopies: dup.extraCopies,
      });
      expect(unavailable).toBeGreaterThan(0);
      expect(firstAnswer.size).toBe(CLIENTS * REQUESTS);
      expect(mismatched).toEqual([]);
      expect(new Set(ids).size).toBe(ids.length);
      expect(lost).toBe(0);
      expect(counts.size).toBe(ids.length);
      expect(dup.ids).toBe(0);
    },
    CASE_TIMEOUT_MS,
  );

  it(
    'a publish that half succeeds (one shard confirmed, one refused) and its repeat: the same ids, nothing lost',
    async () => {
      const pipeline = await pipelineFor('faults-idem-half');
      const api = await pipeline.startApi({
        REDIS_URL: testRedisUrl(),
        PUBLISH_TIMEOUT_MS: String(PUBLISH_TIMEOUT_MS),
      });
      // Shard 1's queue goes away under the api: its message comes back unroutable, shard 0's is confirmed.
      await pipeline.broker.withChannel('deleting shard 1', (channel) =>
        channel.deleteQueue(shardQueueName(pipeline.prefix, 1)),
      );
      const entries = [0, 1, 0, 1].map((shard, i) => ({
        timestamp: timestampInShard(shard, SHARDS, i),
        value: `half-${i}`,
      }));
      const first = await post(api.url, entries, 'half');
      expect(first.status).toBe(503);
      const confirmed = await pipeline.broker.fetchAll(shardQueueName(pipeline.prefix, 0), { requeue: true });
      expect(confirmed).toHaveLength(1);

      await pipeline.broker.withChannel('declaring the topology again', (channel) =>
        assertTopology(channel, { queuePrefix: pipeline.prefix, shardsCount: SHARDS, queueType: 'classic' }),
      );
      const repeat = await post(api.url, entries, 'half');
      expect(repeat.status).toBe(201);
      expect(repeat.replayed).toBe(false);
      const { ids } = JSON.parse(repeat.body) as { ids: string[] };
      // The half that was confirmed holds the very ids the repeat answered.
      const halfIds = (JSON.parse(confirmed[0].content.toString()) as ShardPacket).data.entries.map(({ id }) => id);
      expect(halfIds).toEqual([ids[0], ids[2]]);
      expect(await post(api.url, entries, 'half')).toMatchObject({ status: 201, replayed: true, body: repeat.body });

      await pipeline.startConsumer({ BATCH_FLUSH_MS: '200' });
      const { counts, lost, dup } = await tally(pipeline, ids);
      summary('idempotency: half-confirmed publish and its repeat', {
        entries: ids.length,
        lost,
        duplicatedIds: dup.ids,
        extraCopies: dup.extraCopies,
      });
      expect(lost).toBe(0);
      expect(counts.size).toBe(ids.length);
      expect(dup.ids).toBe(0);
    },
    CASE_TIMEOUT_MS,
  );

  it(
    'a repeat while the first attempt is still in flight: 409, then the first answer once it is done',
    async () => {
      const pipeline = await pipelineFor('faults-idem-409');
      const link = await run.brokerProxy();
      const api = await pipeline.startApi({
        RABBITMQ_URL: link.url,
        REDIS_URL: testRedisUrl(),
        PUBLISH_TIMEOUT_MS: String(PUBLISH_TIMEOUT_MS),
      });
      const entries = spreadEntries(6, 'in-flight');
      link.proxy.stall();
      const first = post(api.url, entries, 'in-flight');
      await waitFor(async () => (await redis.keys(idempotencyNamespace(pipeline.prefix))).includes('in-flight'), {
        description: 'the first attempt to claim its key',
      });
      const during = await post(api.url, entries, 'in-flight');
      link.proxy.restore();
      const firstAnswer = await first;
      summary('idempotency: repeat while in flight', { first: firstAnswer.status, repeat: during.status });
      expect(during.status).toBe(409);
      // The first attempt ends either way; a repeat then gets its answer or processes it again.
      expect([201, 503]).toContain(firstAnswer.status);
      const after = await waitFor(
        async () => {
          const answer = await post(api.url, entries, 'in-flight');
          return answer.status === 201 ? answer : undefined;
        },
        { description: 'a repeat to get 201', timeoutMs: 10_000, intervalMs: 200 },
      );
      if (firstAnswer.status === 201) expect(after).toMatchObject({ replayed: true, body: firstAnswer.body });
    },
    CASE_TIMEOUT_MS,
  );
});

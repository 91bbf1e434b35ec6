import type { GetMessage } from 'amqplib';
import { request as httpRequest } from 'node:http';
import { IDEMPOTENCY_EXPIRES_HEADER, type ShardPacket } from '@app/contracts';
import { shardQueueName } from '@app/sharding';
import {
  TcpProxy,
  TestBroker,
  TestRedis,
  freePort,
  idempotencyNamespace,
  spreadEntries,
  testBrokerUrl,
  testPrefix,
  testRedisUrl,
  waitFor,
  withDeadline,
} from '@app/testing';
import type { InFlightRecord } from '../src/idempotency/idempotency.store';
import { RedisIdempotencyStore } from '../src/idempotency/redis-idempotency.store';
import { TestApi } from './test-api';

const SHARDS = 3;
const KEY = 'idempotency-key';

interface Queued {
  messageId: string;
  expires: unknown;
  ids: string[];
}

describe('Idempotency-Key (e2e, real RabbitMQ and Redis)', () => {
  let broker: TestBroker;
  let redis: TestRedis;
  const prefixes: string[] = [];

  beforeAll(async () => {
    broker = await TestBroker.connect();
    redis = await TestRedis.connect();
  });

  afterAll(async () => {
    for (const prefix of prefixes) {
      await broker.deleteQueues(prefix, SHARDS);
      await redis.deleteNamespace(idempotencyNamespace(prefix));
    }
    await broker?.close();
    await redis?.close();
  });

  /** A queue prefix, and so a Redis namespace, of the test's own, cleaned up after the suite. */
  function newPrefix(name: string): string {
    const prefix = testPrefix(name);
    prefixes.push(prefix);
    return prefix;
  }

  function envFor(prefix: string, extra: Record<string, string> = {}): Record<string, string> {
    return { QUEUE_PREFIX: prefix, SHARDS_COUNT: String(SHARDS), ...extra };
  }

  async function queuedCount(prefix: string): Promise<number> {
    let count = 0;
    for (let shard = 0; shard < SHARDS; shard++) count += await broker.count(shardQueueName(prefix, shard));
    return count;
  }

  /** Every message of `prefix`'s shard queues, taken out. */
  async function takeQueued(prefix: string): Promise<Queued[]> {
    const queued: Queued[] = [];
    for (let shard = 0; shard < SHARDS; shard++) {
      for (const message of await broker.fetchAll(shardQueueName(prefix, shard))) queued.push(describe(message));
    }
    return queued;

    function describe(message: GetMessage): Queued {
      const packet = JSON.parse(message.content.toString()) as ShardPacket;
      return {
        messageId: message.properties.messageId as string,
        expires: (message.properties.headers ?? {})[IDEMPOTENCY_EXPIRES_HEADER],
        ids: packet.data.entries.map(({ id }) => id),
      };
    }
  }

  describe.each([
    ['in memory (a single api)', () => ({})],
    ['in Redis', () => ({ REDIS_URL: testRedisUrl() })],
  ])('keys kept %s', (_store, storeEnv) => {
    let prefix: string;
    let api: TestApi;

    beforeAll(async () => {
      prefix = newPrefix('idem');
      api = await TestApi.start(envFor(prefix, storeEnv()));
      await api.waitForHealth(200);
    });

    afterAll(() => api?.close());

    it('replays the first 201 body with Idempotent-Replayed: true, and publishes nothing again', async () => {
      const sent = spreadEntries(7, 'replay');
      const first = await api.post(sent, { [KEY]: 'order-1' });
      expect(first.statusCode).toBe(201);
      expect(first.headers['idempotent-replayed']).toBeUndefined();
      await waitFor(async () => (await queuedCount(prefix)) === SHARDS, { description: 'the first messages' });

      for (let repeat = 0; repeat < 3; repeat++) {
        const again = await api.post(sent, { [KEY]: 'order-1' });
        expect(again.statusCode).toBe(201);
        expect(again.headers['idempotent-replayed']).toBe('true');
        expect(again.body).toBe(first.body);
      }
      const queued = await takeQueued(prefix);
      expect(queued).toHaveLength(SHARDS);
      expect(queued.flatMap(({ ids }) => ids).sort()).toEqual([...first.json<{ ids: string[] }>().ids].sort());
      for (const { expires } of queued) expect(expires).toEqual(expect.any(Number));
    });

    it('answers 422 to the key with another body, and publishes nothing for it', async () => {
      expect((await api.post(spreadEntries(2, 'a'), { [KEY]: 'order-2' })).statusCode).toBe(201);
      await takeQueued(prefix);
      const other = await api.post(spreadEntries(2, 'b'), { [KEY]: 'order-2' });
      expect(other.statusCode).toBe(422);
      expect(other.json()).toMatchObject({ message: 'Idempotency-Key was already used with another body' });
      expect(await queuedCount(prefix)).toBe(0);
    });

    it('keeps requests without a key as before: fresh ids each time, no header on the messages', async () => {
      const sent = spreadEntries(3, 'plain');
      const first = (await api.post(sent)).json<{ ids: string[] }>();
      const second = (await api.post(sent)).json<{ ids: string[] }>();
      expect(new Set([...first.ids, ...second.ids]).size).toBe(6);
      const queued = await takeQueued(prefix);
      expect(queued).toHaveLength(6);
      for (const { expires } of queued) expect(expires).toBeUndefined();
    });

    it.each([
      ['empty', ''],
      ['256 characters', 'k'.repeat(256)],
      ['not ASCII', 'clé'],
    ])('answers 400 naming the header to a key %s, and publishes nothing', async (_case, key) => {
      const answer = await api.post(spreadEntries(2, 'bad-key'), { [KEY]: key });
      expect(answer.statusCode).toBe(400);
      expect(answer.json()).toMatchObject({ message: expect.stringContaining('Idempotency-Key') });
      expect(await queuedCount(prefix)).toBe(0);
    });

    it('answers 400 to a key sent twice, which Node would join into one valid-looking key', async () => {
      const url = new URL('/message', await api.listen());
      const status = await new Promise<number | undefined>((resolve, reject) => {
        const post = httpRequest(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', [KEY]: ['twice-a', 'twice-b'] },
        });
        post.on('response', (response) => {
          response.resume();
          resolve(response.statusCode);
        });
        post.on('error', reject);
        post.end(JSON.stringify(spreadEntries(2, 'twice')));
      });
      expect(status).toBe(400);
      expect(await queuedCount(prefix)).toBe(0);
    });

    it('answers 415 and 400 for the body before the key: the key joins the 400 stage', async () => {
      const bad = { [KEY]: '' };
      expect(
        (
          await api.request({
            method: 'POST',
            url: '/message',
            headers: { ...bad, 'content-type': 'text/plain' },
            payload: 'x',
          })
        ).statusCode,
      ).toBe(415);
      const invalid = await api.post([{ timestamp: 'soon' }], bad);
      expect(invalid.statusCode).toBe(400);
      expect(invalid.json()).toMatchObject({ message: ['0.timestamp must be an RFC 3339 date-time with a time zone'] });
    });
  });

  it('answers 413 for too many entries before 400 for a bad key', async () => {
    const api = await TestApi.start(envFor(newPrefix('idem-413'), { MAX_ENTRIES: '2' }));
    try {
      expect((await api.post(spreadEntries(3, 'many'), { [KEY]: '' })).statusCode).toBe(413);
    } finally {
      await api.close();
    }
  });

  it('two apis sharing Redis see the same keys', async () => {
    const prefix = newPrefix('idem-replicas');
    const env = envFor(prefix, { REDIS_URL: testRedisUrl() });
    const a = await TestApi.start(env);
    const b = await TestApi.start(env);
    try {
      await a.waitForHealth(200);
      await b.waitForHealth(200);
      const sent = spreadEntries(4, 'replicas');
      const first = await a.post(sent, { [KEY]: 'shared' });
      expect(first.statusCode).toBe(201);
      const repeat = await b.post(sent, { [KEY]: 'shared' });
      expect(repeat.statusCode).toBe(201);
      expect(repeat.headers['idempotent-replayed']).toBe('true');
      expect(repeat.body).toBe(first.body);
      expect((await b.post(spreadEntries(4, 'other'), { [KEY]: 'shared' })).statusCode).toBe(422);
      expect(await redis.keys(idempotencyNamespace(prefix))).toEqual(['shared']);
    } finally {
      await b.close();
      await a.close();
    }
  });

  it('forgets a key after IDEMPOTENCY_TTL_S: the repeat is processed again, under the same ids', async () => {
    const prefix = newPrefix('idem-ttl');
    const api = await TestApi.start(envFor(prefix, { REDIS_URL: testRedisUrl(), IDEMPOTENCY_TTL_S: '1' }));
    try {
      await api.waitForHealth(200);
      const sent = spreadEntries(3, 'ttl');
      const first = await api.post(sent, { [KEY]: 'short-lived' });
      const answeredAt = Date.now();
      expect(first.statusCode).toBe(201);
      const fresh = await waitFor(
        async () => {
          const again = await api.post(sent, { [KEY]: 'short-lived' });
          return again.headers['idempotent-replayed'] === undefined ? again : undefined;
        },
        { description: 'the key to expire', timeoutMs: 5_000, intervalMs: 100 },
      );
      expect(Date.now() - answeredAt).toBeGreaterThanOrEqual(900);
      expect(fresh.statusCode).toBe(201);
      expect(fresh.body).toBe(first.body);
      const queued = await takeQueued(prefix);
      expect(queued).toHaveLength(2 * SHARDS);
      expect(new Set(queued.map(({ messageId }) => messageId)).size).toBe(SHARDS);
    } finally {
      await api.close();
    }
  });

  it('answers 503 with Retry-After to keyed requests while Redis is unreachable; requests without a key still work', async () => {
    const prefix = newPrefix('idem-redis-down');
    const api = await TestApi.start(envFor(prefix, { REDIS_URL: `redis://127.0.0.1:${await freePort()}` }));
    try {
      await api.waitForHealth(200);
      const keyed = await withDeadline(api.post(spreadEntries(2, 'down'), { [KEY]: 'k' }), 10_000, 'a keyed answer');
      expect(keyed.statusCode).toBe(503);
      expect(keyed.headers['retry-after']).toMatch(/^\d+$/);
      expect(keyed.json()).toMatchObject({ message: expect.stringContaining('Redis') });
      expect((await api.post(spreadEntries(2, 'plain'))).statusCode).toBe(201);
      expect(await queuedCount(prefix)).toBe(SHARDS - 1);
    } finally {
      await api.close();
    }
  });

  describe('with the broker link stalled mid-request', () => {
    const PUBLISH_TIMEOUT_MS = 1_500;
    let prefix: string;
    let proxy: TcpProxy;
    let api: TestApi;

    beforeAll(async () => {
      prefix = newPrefix('idem-stall');
      proxy = await TcpProxy.forAmqpUrl(testBrokerUrl());
      api = await TestApi.start(
        envFor(prefix, {
          RABBITMQ_URL: proxy.amqpUrlFor(testBrokerUrl()),
          REDIS_URL: testRedisUrl(),
          PUBLISH_TIMEOUT_MS: String(PUBLISH_TIMEOUT_MS),
        }),
      );
      await api.waitForHealth(200);
    });

    afterAll(async () => {
      await api?.close();
      await proxy?.close();
    });

    it('answers 409 to a repeat while the first is in flight; after its 503 the repeat publishes the same ids', async () => {
      const sent = spreadEntries(6, 'stall');
      proxy.stall();
      const first = api.post(sent, { [KEY]: 'in-flight' });
      await waitFor(async () => (await redis.keys(idempotencyNamespace(prefix))).includes('in-flight'), {
        description: 'the first request to claim its key',
      });
      const during = await api.post(sent, { [KEY]: 'in-flight' });
      expect(during.statusCode).toBe(409);
      expect((await api.post(spreadEntries(6, 'other'), { [KEY]: 'in-flight' })).statusCode).toBe(422);
      expect((await first).statusCode).toBe(503);
      proxy.restore();
      await api.waitForHealth(200);

      const repeat = await api.post(sent, { [KEY]: 'in-flight' });
      expect(repeat.statusCode).toBe(201);
      const { ids } = repeat.json<{ ids: string[] }>();
      // The first attempt's messages reached the broker once the link resumed: each twice, same ids.
      await waitFor(async () => (await queuedCount(prefix)) === 2 * SHARDS, {
        description: 'both attempts in the queues',
        timeoutMs: 10_000,
      });
      const queued = await takeQueued(prefix);
      expect(new Set(queued.map(({ messageId }) => messageId)).size).toBe(SHARDS);
      expect([...new Set(queued.flatMap((message) => message.ids))].sort()).toEqual([...ids].sort());
    });
  });

  it('RedisIdempotencyStore: of claims raced from two stores on one key, exactly one wins', async () => {
    const namespace = idempotencyNamespace(newPrefix('idem-race'));
    const stores = [
      new RedisIdempotencyStore(testRedisUrl(), namespace),
      new RedisIdempotencyStore(testRedisUrl(), namespace),
    ];
    try {
      const claims: InFlightRecord[] = Array.from({ length: 20 }, (_, i) => ({
        state: 'in-flight',
        fingerprint: 'f',
        token: `t${i}`,
      }));
      const found = await Promise.all(claims.map((claim, i) => stores[i % 2].claim('race', claim, 10_000)));
      const winners = claims.filter((_, i) => found[i] === undefined);
      expect(winners).toHaveLength(1);
      for (const record of found) if (record !== undefined) expect(record).toEqual(winners[0]);

      await stores[0].release(
        'race',
        claims.find((claim) => claim !== winners[0])!,
      );
      expect(await redis.keys(namespace)).toEqual(['race']);
      await stores[1].release('race', winners[0]);
      expect(await redis.keys(namespace)).toEqual([]);
    } finally {
      await Promise.all(stores.map((store) => store.close()));
    }
  });
});

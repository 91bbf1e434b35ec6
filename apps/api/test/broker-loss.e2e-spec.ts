import type { ShardPacket } from '@app/contracts';
import { shardQueueName } from '@app/sharding';
import { TcpProxy, TestBroker, spreadEntries, testBrokerUrl, testPrefix, waitFor } from '@app/testing';
import { TestApi } from './test-api';

const SHARDS = 3;
const PUBLISH_TIMEOUT_MS = 800;
/** Reconnecting takes RECONNECT_SECONDS (1 s) plus the handshake; allow for a busy machine. */
const RECOVERY_MS = 15_000;

/** Entries over consecutive seconds, so every shard gets a message. */
const body = (label: string) => spreadEntries(SHARDS * 2, label);

/** The api through a TcpProxy the test owns, so the broker can be lost without touching it. */
async function startBehindProxy(name: string) {
  const prefix = testPrefix(name);
  const proxy = await TcpProxy.forAmqpUrl(testBrokerUrl());
  const env = {
    RABBITMQ_URL: proxy.amqpUrlFor(testBrokerUrl()),
    QUEUE_PREFIX: prefix,
    SHARDS_COUNT: String(SHARDS),
    PUBLISH_TIMEOUT_MS: String(PUBLISH_TIMEOUT_MS),
  };
  return { prefix, proxy, env };
}

describe('the api when it loses RabbitMQ (e2e)', () => {
  let broker: TestBroker;

  beforeAll(async () => {
    broker = await TestBroker.connect();
  });

  afterAll(async () => {
    await broker?.close();
  });

  /** Ids of every entry now in `prefix`'s shard queues, taken out. */
  async function takeQueuedIds(prefix: string): Promise<string[]> {
    const ids: string[] = [];
    for (let shard = 0; shard < SHARDS; shard++) {
      for (const message of await broker.fetchAll(shardQueueName(prefix, shard))) {
        ids.push(...(JSON.parse(message.content.toString()) as ShardPacket).data.entries.map(({ id }) => id));
      }
    }
    return ids.sort();
  }

  describe('while running', () => {
    let prefix: string;
    let proxy: TcpProxy;
    let api: TestApi;

    beforeAll(async () => {
      const setup = await startBehindProxy('api-broker-loss');
      ({ prefix, proxy } = setup);
      api = await TestApi.start(setup.env);
      await api.waitForHealth(200);
    });

    afterAll(async () => {
      await api?.close();
      await proxy?.close();
      await broker.deleteQueues(prefix, SHARDS);
    });

    it('answers 503 (with Retry-After) to POST and /health while cut off, 201 and 200 once back', async () => {
      expect((await api.post(body('before'))).statusCode).toBe(201);
      await takeQueuedIds(prefix);

      proxy.cut();
      await api.waitForHealth(503, 5_000);
      const started = Date.now();
      const refused = await api.post(body('during'));
      expect(refused.statusCode).toBe(503);
      expect(refused.headers['retry-after']).toMatch(/^\d+$/);
      expect(refused.json()).toMatchObject({ statusCode: 503, message: expect.stringContaining('RabbitMQ') });
      expect(Date.now() - started).toBeLessThan(PUBLISH_TIMEOUT_MS + 1_000);
      const health = await api.request({ method: 'GET', url: '/health' });
      expect(health.json()).toMatchObject({ status: 'error', error: { rabbitmq: { status: 'down' } } });

      proxy.restore();
      await api.waitForHealth(200, RECOVERY_MS);
      const accepted = await api.post(body('after'));
      expect(accepted.statusCode).toBe(201);
      expect(await takeQueuedIds(prefix)).toEqual([...accepted.json<{ ids: string[] }>().ids].sort());
    });

    it('answers 503 once PUBLISH_TIMEOUT_MS passes when the broker stops answering, and recovers', async () => {
      proxy.stall();
      try {
        const started = Date.now();
        const refused = await api.post(body('stalled'));
        const waited = Date.now() - started;
        expect(refused.statusCode).toBe(503);
        expect(refused.headers['retry-after']).toMatch(/^\d+$/);
        expect(refused.json<{ message: string }>().message).toContain(`no confirm within ${PUBLISH_TIMEOUT_MS} ms`);
        expect(waited).toBeGreaterThanOrEqual(PUBLISH_TIMEOUT_MS - 50);
        expect(waited).toBeLessThan(PUBLISH_TIMEOUT_MS + 1_000);
        // The connection still looks open (heartbeats have not given up), but health tells.
        expect(await api.healthStatus()).toBe(503);
      } finally {
        proxy.restore();
      }
      // Whatever the stalled connection still delivers may land (at least once); what counts is
      // that the api answers 201 again within the deadline.
      await waitFor(async () => (await api.post(body('resumed'))).statusCode === 201, {
        description: 'POST /message to answer 201 after the stall',
        timeoutMs: RECOVERY_MS,
        intervalMs: 200,
      });
      await api.waitForHealth(200);
    });
  });

  describe('when it starts before the broker is reachable', () => {
    const opened: { prefix: string; proxy: TcpProxy; api?: TestApi }[] = [];

    /** An api whose proxy refuses connections from the start, once it has tried `attempts` times. */
    async function startCutOff(name: string, attempts: number) {
      const setup = await startBehindProxy(name);
      const started: (typeof opened)[number] = { prefix: setup.prefix, proxy: setup.proxy };
      opened.push(started);
      setup.proxy.cut();
      started.api = await TestApi.start(setup.env);
      await waitFor(() => setup.proxy.refusedCount >= attempts, {
        description: `the api to try the broker ${attempts} time(s)`,
        timeoutMs: RECOVERY_MS,
      });
      return { ...setup, api: started.api };
    }

    afterAll(async () => {
      for (const { prefix, proxy, api } of opened) {
        await api?.close();
        await proxy.close();
        await broker.deleteQueues(prefix, SHARDS);
      }
    });

    it('starts anyway, answers 503 while it keeps trying, and connects once the broker is reachable', async () => {
      const { prefix, proxy, api } = await startCutOff('api-broker-late', 2);

      expect(await api.healthStatus()).toBe(503);
      const refused = await api.post(body('early'));
      expect(refused.statusCode).toBe(503);
      expect(refused.headers['retry-after']).toMatch(/^\d+$/);

      proxy.restore();
      await api.waitForHealth(200, RECOVERY_MS);
      const accepted = await api.post(body('late'));
      expect(accepted.statusCode).toBe(201);
      expect(await takeQueuedIds(prefix)).toEqual([...accepted.json<{ ids: string[] }>().ids].sort());
    });

    it('closes promptly while the broker is still unreachable', async () => {
      const { api } = await startCutOff('api-broker-never', 1);
      const started = Date.now();
      await api.close();
      expect(Date.now() - started).toBeLessThan(2_000);
    });
  });
});

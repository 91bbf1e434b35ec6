import { Pipeline, SlowClient, TestBroker, makeEntries, testPrefix, waitFor } from '@app/testing';
import { ShutdownGate } from '../src/shutdown/shutdown-gate.service';
import { TestApi } from './test-api';

const SHARDS = 5;
const REQUEST_TIMEOUT_MS = 1_000;
/** Node looks for late requests once a second: a slow one closes at most that much late, plus a busy machine's. */
const CLOSE_SLACK_MS = 2_000;
const BODY = JSON.stringify(makeEntries(40));

/** Waits until the server has closed `client`'s connection. */
async function closedBy(client: SlowClient, timeoutMs: number, description: string): Promise<void> {
  await waitFor(() => client.isClosed, { description, timeoutMs, intervalMs: 20 });
}

describe('slow clients (e2e, over real sockets)', () => {
  const broker = TestBroker.connect();
  const clients: SlowClient[] = [];
  const opened: { api: TestApi; prefix: string }[] = [];

  async function startApi(env: Record<string, string> = {}): Promise<{ api: TestApi; url: string }> {
    const prefix = testPrefix('api-slow');
    const api = await TestApi.start({ QUEUE_PREFIX: prefix, SHARDS_COUNT: String(SHARDS), ...env });
    opened.push({ api, prefix });
    await api.waitForHealth(200);
    return { api, url: await api.listen() };
  }

  async function client(url: string): Promise<SlowClient> {
    const opening = await SlowClient.connect(url);
    clients.push(opening);
    return opening;
  }

  afterAll(async () => {
    for (const open of clients) open.destroy();
    for (const { api, prefix } of opened) {
      await api.close();
      await (await broker).deleteQueues(prefix, SHARDS);
    }
    await (await broker).close();
  });

  describe(`with REQUEST_TIMEOUT_MS=${REQUEST_TIMEOUT_MS}`, () => {
    let url: string;

    beforeAll(async () => {
      ({ url } = await startApi({ REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS) }));
    });

    it('answers 408 and closes the connection when the body has not all arrived in time', async () => {
      const slow = await client(url);
      const started = Date.now();
      slow.write(SlowClient.postHead(Buffer.byteLength(BODY)));
      slow.trickle(BODY, 100);
      await closedBy(slow, REQUEST_TIMEOUT_MS + CLOSE_SLACK_MS, 'the api to close a slow upload');
      expect(slow.status).toBe(408);
      expect(slow.closedAt! - started).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 50);
    });

    it('answers 408 and closes the connection when the headers have not all arrived in time', async () => {
      const slow = await client(url);
      slow.trickle(SlowClient.postHead(Buffer.byteLength(BODY)), 100);
      await closedBy(slow, REQUEST_TIMEOUT_MS + CLOSE_SLACK_MS, 'the api to close a slow request head');
      expect(slow.status).toBe(408);
    });

    it('answers 408 to a connection that never sends a byte, and closes it', async () => {
      const silent = await client(url);
      await closedBy(silent, REQUEST_TIMEOUT_MS + CLOSE_SLACK_MS, 'the api to close a silent connection');
      expect(silent.status).toBe(408);
    });

    it('answers a request that arrives whole, however long its publish takes', async () => {
      const whole = await client(url);
      whole.write(SlowClient.postHead(Buffer.byteLength(BODY)) + BODY);
      await waitFor(() => whole.status, { description: 'the answer to a whole request', timeoutMs: 5_000 });
      expect(whole.status).toBe(201);
    });
  });

  describe('while shutting down', () => {
    it('answers 503 with Retry-After to new requests and slow uploads, /health 503, and closes idle sockets', async () => {
      const { api, url } = await startApi();
      const uploading = await client(url);
      uploading.write(SlowClient.postHead(Buffer.byteLength(BODY)) + BODY.slice(0, 10));
      const heading = await client(url);
      heading.write('POST /message HTTP/1.1\r\nhost: test\r\n');
      const idle = await client(url);
      const server = api.app.getHttpServer();
      const connections = () => new Promise<number>((resolve) => server.getConnections((_, count) => resolve(count)));
      await waitFor(async () => (await connections()) >= 3, { description: 'the api to accept three connections' });

      api.app.get(ShutdownGate).beforeApplicationShutdown();

      await closedBy(uploading, 2_000, 'the slow upload to be refused');
      expect({ status: uploading.status, retryAfter: uploading.header('retry-after') }).toEqual({
        status: 503,
        retryAfter: '1',
      });
      await closedBy(heading, 2_000, 'the half-sent head to be closed');
      await closedBy(idle, 2_000, 'the idle connection to be closed');

      const late = await fetch(`${url}/message`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: BODY,
      });
      expect(late.status).toBe(503);
      expect(late.headers.get('retry-after')).toBe('1');
      expect(await late.json()).toMatchObject({ statusCode: 503, message: expect.stringContaining('shutting down') });

      const health = await api.request({ method: 'GET', url: '/health' });
      expect(health.statusCode).toBe(503);
      expect(health.json()).toMatchObject({
        status: 'error',
        error: { rabbitmq: { status: 'down', message: 'the api is shutting down' } },
      });

      const started = Date.now();
      await api.close();
      expect(Date.now() - started).toBeLessThan(2_000);
    });
  });

  describe('the built api on SIGTERM', () => {
    let pipeline: Pipeline | undefined;
    afterAll(async () => pipeline?.dispose());

    it('exits 0 at once, slow uploads and half-sent heads notwithstanding', async () => {
      pipeline = await Pipeline.create('api-slow-sigterm', { shardsCount: SHARDS });
      const { app, url } = await pipeline.startApi();
      const slow = await Promise.all(Array.from({ length: 5 }, () => client(url)));
      slow.forEach((each, i) => each.write(i % 2 ? 'POST /message HTTP/1.1\r\n' : SlowClient.postHead(1_000) + '['));
      const started = Date.now();
      expect(await app.stop('SIGTERM', 10_000)).toBe(0);
      expect(Date.now() - started).toBeLessThan(3_000);
      for (const each of slow) await closedBy(each, 1_000, 'every slow connection to be closed');
    });
  });
});

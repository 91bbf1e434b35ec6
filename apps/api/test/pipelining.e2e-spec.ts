import { shardQueueName } from '@app/sharding';
import { SlowClient, TestBroker, testPrefix, waitFor } from '@app/testing';
import { TestApi } from './test-api';

const SHARDS = 5;
const BODY = JSON.stringify([{ timestamp: '2019-10-12T08:10:53.52Z', value: 'pipelined' }]);
const POST = SlowClient.postHead(Buffer.byteLength(BODY)) + BODY;

/** The status codes of every answer `client` received, in order. */
function statuses(client: SlowClient): number[] {
  return [...client.received.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((match) => Number(match[1]));
}

describe('HTTP/1.1 pipelining: several requests in one write (e2e, over real sockets)', () => {
  const prefix = testPrefix('api-pipelining');
  const clients: SlowClient[] = [];
  let broker: TestBroker;
  let api: TestApi;
  let url: string;

  beforeAll(async () => {
    broker = await TestBroker.connect();
    api = await TestApi.start({ QUEUE_PREFIX: prefix, SHARDS_COUNT: String(SHARDS) });
    await api.waitForHealth(200);
    url = await api.listen();
  });

  afterAll(async () => {
    for (const open of clients) open.destroy();
    await api?.close();
    await broker?.deleteQueues(prefix, SHARDS);
    await broker?.close();
  });

  async function queued(): Promise<number> {
    return Object.values(await broker.countAll(prefix, SHARDS)).reduce((sum, count) => sum + count, 0);
  }

  /** Sends `text` in one write on a new connection; resolves once the api has closed it. */
  async function sendAll(text: string): Promise<SlowClient> {
    const client = await SlowClient.connect(url);
    clients.push(client);
    client.write(text);
    await waitFor(() => client.isClosed, { description: 'the api to close the connection', intervalMs: 20 });
    return client;
  }

  /** A request published on a connection of its own, so that whatever was published before it is queued by now. */
  async function publishSentinel(): Promise<void> {
    const client = await sendAll(POST.replace('host: test', 'host: test\r\nconnection: close'));
    expect(statuses(client)).toEqual([201]);
  }

  beforeEach(async () => {
    for (let shard = 0; shard < SHARDS; shard++) await broker.purge(shardQueueName(prefix, shard));
  });

  it('answers each of three pipelined requests, in order', async () => {
    const client = await sendAll(POST + POST + POST.replace('host: test', 'host: test\r\nconnection: close'));
    expect(statuses(client)).toEqual([201, 201, 201]);
    const ids = [...client.received.matchAll(/"ids":\["([^"]+)"\]/g)].map((match) => match[1]);
    expect(new Set(ids).size).toBe(3);
    await waitFor(async () => (await queued()) === 3, { description: 'three messages queued' });
  });

  it('answers a request 201 before the 400 for the bytes after it that are not HTTP', async () => {
    // Fastify answered the garbage's 400 at once, as the first answer on the connection, so the
    // client read it as the answer to its request, which was published all the same.
    const client = await sendAll(POST + 'GARBAGE\r\n\r\n');
    expect(statuses(client)).toEqual([201, 400]);
    await waitFor(async () => (await queued()) === 1, { description: 'the request published' });
  });

  it('processes nothing pipelined after an answer that closes the connection', async () => {
    // A body that is not JSON gets 400 with Connection: close (RFC 9112, 9.6: no request after it
    // may be processed): the request behind it was published, and its answer never sent.
    const bad = SlowClient.postHead(1) + '[';
    const client = await sendAll(bad + POST);
    expect(statuses(client)).toEqual([400]);
    expect(client.header('connection')).toBe('close');
    await publishSentinel();
    expect(await queued()).toBe(1);
  });
});

import type { GetMessage } from 'amqplib';
import { gzipSync } from 'node:zlib';
import {
  ENTRIES_PATTERN,
  SHARDS_COUNT_HEADER,
  SHARD_MESSAGE_MAX_ENTRIES,
  type ShardPacket,
  decodeShardPacket,
} from '@app/contracts';
import { shardOf, shardQueueName } from '@app/sharding';
import { SlowClient, TestBroker, entryTimestamp, testPrefix, waitFor } from '@app/testing';
import { TestApi } from './test-api';

const SHARDS = 5;
const TOKEN = 'e2e-secret';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const MAX_ENTRIES = 50;
const MAX_BODY_BYTES = 16_384;
const BAD_TIMESTAMP = 'timestamp must be an RFC 3339 date-time with a time zone';

interface Rejection {
  name: string;
  status: number;
  headers: Record<string, string>;
  payload: string | Buffer;
  /** The 400's messages, when the case is about them. */
  messages?: string[];
}

interface SentEntry {
  timestamp: string;
  value?: string | null;
}

/** Entries over `count` consecutive seconds (so over every shard), with every kind of value. */
function entries(count: number, label: string): SentEntry[] {
  return Array.from({ length: count }, (_, i) => {
    const timestamp = entryTimestamp(50_520 + i * 1000);
    if (i % 4 === 1) return { timestamp };
    if (i % 4 === 2) return { timestamp, value: null };
    return { timestamp, value: `${label}-${i}` };
  });
}

describe('POST /message against RabbitMQ (e2e)', () => {
  const prefix = testPrefix('api-message');
  let broker: TestBroker;
  let api: TestApi;

  /** Every message now in the shard queues, taken out, by shard. */
  async function takeShardMessages(): Promise<Map<number, GetMessage[]>> {
    const byShard = new Map<number, GetMessage[]>();
    for (let shard = 0; shard < SHARDS; shard++) {
      byShard.set(shard, await broker.fetchAll(shardQueueName(prefix, shard)));
    }
    return byShard;
  }

  async function queuedMessages(): Promise<number> {
    const counts = await broker.countAll(prefix, SHARDS);
    return Object.values(counts).reduce((sum, count) => sum + count, 0);
  }

  beforeAll(async () => {
    broker = await TestBroker.connect();
    api = await TestApi.start({
      QUEUE_PREFIX: prefix,
      SHARDS_COUNT: String(SHARDS),
      API_TOKEN: TOKEN,
      MAX_ENTRIES: String(MAX_ENTRIES),
      MAX_BODY_BYTES: String(MAX_BODY_BYTES),
    });
    await api.waitForHealth(200);
  });

  afterAll(async () => {
    await api?.close();
    await broker?.deleteQueues(prefix, SHARDS);
    await broker?.close();
  });

  it('answers /health with 200 and the terminus body while the broker is up', async () => {
    const response = await api.request({ method: 'GET', url: '/health' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({
      status: 'ok',
      info: { rabbitmq: { status: 'up' } },
      error: {},
      details: { rabbitmq: { status: 'up' } },
    });
  });

  it('201 puts each entry of concurrent requests in its shard queue once, persistent, as entries.v1', async () => {
    await takeShardMessages();
    const bodies = [entries(23, 'a'), entries(7, 'b'), entries(MAX_ENTRIES, 'c')];
    const responses = await Promise.all(bodies.map((body) => api.post(body, AUTH)));

    const sent = new Map<string, SentEntry>();
    responses.forEach((response, r) => {
      expect(response.statusCode).toBe(201);
      const { accepted, ids } = response.json<{ accepted: number; ids: string[] }>();
      expect(accepted).toBe(bodies[r].length);
      expect(ids).toHaveLength(bodies[r].length);
      ids.forEach((id, i) => sent.set(id, bodies[r][i]));
    });
    expect(sent.size).toBe(23 + 7 + MAX_ENTRIES);

    const seen = new Map<string, number>();
    for (const [shard, messages] of await takeShardMessages()) {
      // One message per shard per request: every request here has entries in every shard.
      expect(messages).toHaveLength(bodies.length);
      for (const message of messages) {
        expect(message.properties.deliveryMode).toBe(2);
        expect(message.properties.contentType).toBe('application/json');
        expect(message.properties.headers).toMatchObject({ [SHARDS_COUNT_HEADER]: SHARDS });
        const packet = JSON.parse(message.content.toString()) as ShardPacket;
        expect(packet.pattern).toBe(ENTRIES_PATTERN);
        expect(packet.data.shard).toBe(shard);
        for (const wire of packet.data.entries) {
          seen.set(wire.id, (seen.get(wire.id) ?? 0) + 1);
          const original = sent.get(wire.id);
          expect(original).toBeDefined();
          expect(shardOf(wire.timestamp, SHARDS)).toBe(shard);
          // As received; value left out when it was null or absent.
          expect(wire).toEqual(
            original?.value == null
              ? { id: wire.id, timestamp: original?.timestamp }
              : { id: wire.id, timestamp: original.timestamp, value: original.value },
          );
        }
      }
    }
    expect([...seen.keys()].sort()).toEqual([...sent.keys()].sort());
    expect([...seen.values()].every((count) => count === 1)).toBe(true);
    expect(await broker.count(`${prefix}.dead-letter`)).toBe(0);
  });

  describe('a rejected request publishes nothing', () => {
    const valid = entries(5, 'r');
    const tooManyInvalid = Array.from({ length: MAX_ENTRIES + 1 }, () => ({ timestamp: 'no' }));
    const oversized = JSON.stringify([{ timestamp: valid[0].timestamp, value: 'x'.repeat(MAX_BODY_BYTES) }]);

    const json = JSON.stringify(valid);
    const form = 'application/x-www-form-urlencoded';

    it.each<Rejection>([
      { name: 'no bearer token', status: 401, headers: {}, payload: json },
      { name: 'a wrong bearer token', status: 401, headers: { authorization: 'Bearer nope' }, payload: json },
      { name: 'no token, even when not JSON', status: 401, headers: { 'content-type': 'text/plain' }, payload: 'x' },
      { name: 'no token, even when too large', status: 401, headers: {}, payload: oversized },
      { name: 'text/plain', status: 415, headers: { ...AUTH, 'content-type': 'text/plain' }, payload: json },
      { name: 'a form', status: 415, headers: { ...AUTH, 'content-type': form }, payload: 'a=1' },
      { name: 'no content type', status: 415, headers: { ...AUTH, 'content-type': '' }, payload: json },
      { name: 'gzip JSON', status: 415, headers: { ...AUTH, 'content-encoding': 'gzip' }, payload: gzipSync(json) },
      {
        name: 'JSON in UTF-16',
        status: 415,
        headers: { ...AUTH, 'content-type': 'application/json; charset=utf-16le' },
        payload: Buffer.from(json, 'utf16le'),
      },
      { name: 'a body over MAX_BODY_BYTES', status: 413, headers: AUTH, payload: oversized },
      {
        name: 'gzip JSON over MAX_BODY_BYTES (415 before 413)',
        status: 415,
        headers: { ...AUTH, 'content-encoding': 'gzip' },
        payload: oversized,
      },
      {
        name: 'text/plain over MAX_BODY_BYTES with a valid token (415 before 413)',
        status: 415,
        headers: { ...AUTH, 'content-type': 'text/plain' },
        payload: oversized,
      },
      {
        name: 'malformed JSON over MAX_BODY_BYTES (413 by bytes before 400)',
        status: 413,
        headers: AUTH,
        payload: `[{"timestamp":${'['.repeat(MAX_BODY_BYTES)}`,
      },
      {
        name: 'more than MAX_ENTRIES entries, before their faults',
        status: 413,
        headers: AUTH,
        payload: JSON.stringify(tooManyInvalid),
      },
      { name: 'malformed JSON', status: 400, headers: AUTH, payload: '[{"timestamp":' },
      {
        name: 'bytes that are not UTF-8 in a value',
        status: 400,
        headers: AUTH,
        payload: Buffer.concat([Buffer.from(json.slice(0, -2)), Buffer.from([0xff, 0xfe]), Buffer.from('"}]')]),
      },
      { name: 'a JSON object', status: 400, headers: AUTH, payload: JSON.stringify(valid[0]) },
      { name: 'an empty array', status: 400, headers: AUTH, payload: '[]' },
      {
        name: 'one bad entry among good ones',
        status: 400,
        headers: AUTH,
        payload: JSON.stringify([...valid, { timestamp: '2019-10-12 08:10:53Z' }, { ...valid[0], extra: 1 }]),
        messages: [`5.${BAD_TIMESTAMP}`, '6.property extra should not exist'],
      },
    ])('$name: $status', async ({ status, headers, payload, messages }) => {
      const before = await queuedMessages();
      const response = await api.post(payload, headers);
      expect(response.statusCode).toBe(status);
      if (messages !== undefined) {
        expect(response.json()).toEqual({ statusCode: 400, error: 'Bad Request', message: messages });
      }
      expect(await queuedMessages()).toBe(before);
    });

    it('says what to change: send the body uncompressed, in UTF-8', async () => {
      const gzip = await api.post(gzipSync(json), { ...AUTH, 'content-encoding': 'gzip' });
      expect(gzip.json()).toMatchObject({
        statusCode: 415,
        message: 'Content-Encoding gzip is not supported: send the JSON body uncompressed',
      });
      const latin1 = await api.post(
        Buffer.from('[{"timestamp":"2019-10-12T08:10:50Z","value":"caf\xe9"}]', 'latin1'),
        AUTH,
      );
      expect(latin1.json()).toMatchObject({ statusCode: 400, message: 'the body is not valid UTF-8' });
    });

    it('and nothing turns up later: a valid request after them finds only its own entries', async () => {
      await takeShardMessages();
      for (const { status, headers, payload } of [
        { status: 401, headers: {}, payload: json },
        { status: 413, headers: AUTH, payload: oversized },
        { status: 400, headers: AUTH, payload: JSON.stringify([...valid, { timestamp: 'no' }]) },
      ]) {
        expect((await api.post(payload, headers)).statusCode).toBe(status);
      }
      const response = await api.post(valid, AUTH);
      expect(response.statusCode).toBe(201);
      const { ids } = response.json<{ ids: string[] }>();
      const queued = [...(await takeShardMessages()).values()]
        .flat()
        .flatMap((message) => (JSON.parse(message.content.toString()) as ShardPacket).data.entries.map(({ id }) => id));
      expect(queued.sort()).toEqual([...ids].sort());
    });
  });

  describe('precedence over a real socket: 401, then 415, then 413, then 400', () => {
    let url: string;

    beforeAll(async () => {
      url = await api.listen();
    });

    /** The status of a POST whose head declares `bytes` of `contentType`; the body is never sent. */
    async function statusOfHead(bytes: number, headers: Record<string, string>): Promise<number | undefined> {
      const client = await SlowClient.connect(url);
      try {
        client.write(SlowClient.postHead(bytes, headers));
        await waitFor(() => client.status, { description: 'the answer to a request head', timeoutMs: 5_000 });
        return client.status;
      } finally {
        client.destroy();
      }
    }

    it.each([
      ['no token, text/plain, over MAX_BODY_BYTES', { 'content-type': 'text/plain' }, 401],
      ['a valid token, text/plain, over MAX_BODY_BYTES', { ...AUTH, 'content-type': 'text/plain' }, 415],
      ['a valid token, gzip JSON, over MAX_BODY_BYTES', { ...AUTH, 'content-encoding': 'gzip' }, 415],
      ['a valid token, JSON, over MAX_BODY_BYTES', AUTH, 413],
    ])('%s: %d from the head alone', async (_case, headers, status) => {
      expect(await statusOfHead(MAX_BODY_BYTES + 1, headers)).toBe(status);
    });

    it('413 for a chunked JSON body that grows past MAX_BODY_BYTES, malformed as it is', async () => {
      const response = await fetch(`${url}/message`, {
        method: 'POST',
        headers: { ...AUTH, 'content-type': 'application/json' },
        body: new Blob([`[{"timestamp":${'['.repeat(MAX_BODY_BYTES)}`]).stream(),
        duplex: 'half',
      });
      expect(response.status).toBe(413);
    });

    it('400 for malformed JSON under the limit', async () => {
      const response = await fetch(`${url}/message`, {
        method: 'POST',
        headers: { ...AUTH, 'content-type': 'application/json' },
        body: '[{"timestamp":',
      });
      expect(response.status).toBe(400);
    });
  });

  it('splits one shard of a large request into messages of at most 250 entries, ids in request order', async () => {
    const wide = await TestApi.start({
      QUEUE_PREFIX: prefix,
      SHARDS_COUNT: String(SHARDS),
      API_TOKEN: TOKEN,
      MAX_ENTRIES: '1000',
      MAX_BODY_BYTES: '1048576',
    });
    try {
      await wide.waitForHealth(200);
      await takeShardMessages();
      // 2.5 messages' worth of entries, all in the same second: one shard.
      const body = Array.from({ length: 2 * SHARD_MESSAGE_MAX_ENTRIES + 100 }, (_, i) => ({
        timestamp: `2019-10-12T08:10:53.${String(i).padStart(3, '0')}Z`,
        value: `split-${i}`,
      }));
      const response = await wide.post(body, AUTH);
      expect(response.statusCode).toBe(201);
      const shard = shardOf(body[0].timestamp, SHARDS);
      const messages = (await takeShardMessages()).get(shard) ?? [];
      const packets = messages.map((message) => decodeShardPacket(message.content, shard, SHARDS));
      expect(packets.map((packet) => packet.length)).toEqual([250, 250, 100]);
      expect(packets.flat().map(({ id }) => id)).toEqual(response.json<{ ids: string[] }>().ids);
      expect(packets.flat().map(({ value }) => value)).toEqual(body.map(({ value }) => value));
      for (const message of messages) {
        expect(message.properties.headers).toMatchObject({ [SHARDS_COUNT_HEADER]: SHARDS });
      }
    } finally {
      await wide.close();
    }
  });
});

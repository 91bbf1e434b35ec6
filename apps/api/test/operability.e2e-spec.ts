import { TestBroker, makeEntries, metricValue, testPrefix } from '@app/testing';
import { TestApi } from './test-api';

const MAX_ENTRIES = 20;

describe('api metrics and OpenAPI description (e2e)', () => {
  const prefix = testPrefix('api-operability');
  let api: TestApi;
  let broker: TestBroker;

  beforeAll(async () => {
    broker = await TestBroker.connect();
    api = await TestApi.start({ QUEUE_PREFIX: prefix, SHARDS_COUNT: '5', MAX_ENTRIES: String(MAX_ENTRIES) });
    await api.waitForHealth(200);
  });

  afterAll(async () => {
    await api?.close();
    await broker?.deleteQueues(prefix, 5);
    await broker?.close();
  });

  async function metrics(): Promise<string> {
    const response = await api.request({ method: 'GET', url: '/metrics' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toContain('text/plain');
    return response.body;
  }

  it('counts requests by route and status, accepted entries and confirm latency, and they move with traffic', async () => {
    const before = await metrics();
    expect(metricValue(before, 'broker_connected', { app: 'api' })).toBe(1);
    /** How far a counter moved since `before`: the test holds whatever ran before it in this file. */
    const moved = (after: string, name: string, labels?: Record<string, string>) =>
      (metricValue(after, name, labels) ?? 0) - (metricValue(before, name, labels) ?? 0);

    expect((await api.post(makeEntries(10))).statusCode).toBe(201);
    expect((await api.post(makeEntries(5))).statusCode).toBe(201);
    expect((await api.post([{ timestamp: 'yesterday' }])).statusCode).toBe(400);

    const after = await metrics();
    expect(moved(after, 'api_entries_accepted_total')).toBe(15);
    expect(moved(after, 'http_requests_total', { route: '/message', status: '201' })).toBe(2);
    expect(moved(after, 'http_requests_total', { route: '/message', status: '400' })).toBe(1);
    // 10 entries over 10 consecutive 137 ms steps span 2 seconds at most: 1..5 shard messages per request.
    expect(moved(after, 'api_publish_confirm_seconds_count', { outcome: 'confirmed' })).toBeGreaterThanOrEqual(2);
    expect(metricValue(after, 'process_resident_memory_bytes')).toBeGreaterThan(0);
  });

  it('describes POST /message with its schema and every status, as the validation applies them', async () => {
    const page = await api.request({ method: 'GET', url: '/docs' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toContain('text/html');

    const document = (await api.request({ method: 'GET', url: '/docs-json' })).json();
    const post = document.paths['/message'].post;
    expect(Object.keys(post.responses).sort()).toEqual(['201', '400', '401', '408', '409', '413', '415', '422', '503']);
    expect(post.responses['503'].headers['Retry-After']).toBeDefined();
    const body = post.requestBody.content['application/json'];
    expect(body.schema).toMatchObject({ type: 'array', minItems: 1, maxItems: MAX_ENTRIES });
    expect(body.examples.sample.value.length).toBeGreaterThan(0);
    expect(document.components.schemas.CreateEntryDto).toMatchObject({
      required: ['timestamp'],
      additionalProperties: false,
      properties: { timestamp: { type: 'string', format: 'date-time' }, value: { type: 'string', nullable: true } },
    });

    // The example the page offers is accepted as it is.
    expect((await api.post(body.examples.sample.value)).statusCode).toBe(201);
  });

  it('answers 503, not 201, when a shard queue was deleted under it: the broker would drop the entries', async () => {
    // An api of its own: the queues it loses are not those of the other tests, whatever their order.
    const ownPrefix = testPrefix('api-operability-deleted');
    const own = await TestApi.start({ QUEUE_PREFIX: ownPrefix, SHARDS_COUNT: '5' });
    try {
      await own.waitForHealth(200);
      await broker.deleteQueues(ownPrefix, 5);
      const response = await own.post(makeEntries(3));
      expect(response.statusCode).toBe(503);
      expect(response.headers['retry-after']).toBe('1');
      expect(response.json<{ message: string }>().message).toMatch(/no queue .*\.shard\.\d to route to/);
    } finally {
      await own.close();
      await broker.deleteQueues(ownPrefix, 5);
    }
  });
});

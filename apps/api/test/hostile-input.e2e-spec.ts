import { Pipeline, TestBroker, makeEntries, testPrefix } from '@app/testing';
import { TestApi } from './test-api';

const SHARDS = 5;
const BAD_TIMESTAMP = 'timestamp must be an RFC 3339 date-time with a time zone';
const VALID = '2019-10-12T08:10:53.52Z';
/** 100,000 levels: about 200 KB, well under the default MAX_BODY_BYTES. */
const DEPTH = 100_000;
const deepArray = '['.repeat(DEPTH) + ']'.repeat(DEPTH);
const deepObject = '{"a":'.repeat(DEPTH) + '1' + '}'.repeat(DEPTH);

/** One entry with 100,000 extra keys of two or three characters (about 900 KB). */
function entryWithManyKeys(): string {
  const keys = Array.from({ length: 100_000 }, (_, i) => `"${i.toString(36)}":0`).join(',');
  return `[{"timestamp":"${VALID}",${keys}}]`;
}

describe('POST /message with hostile bodies (e2e)', () => {
  const prefix = testPrefix('api-hostile');
  let broker: TestBroker;
  let api: TestApi;

  beforeAll(async () => {
    broker = await TestBroker.connect();
    api = await TestApi.start({ QUEUE_PREFIX: prefix, SHARDS_COUNT: String(SHARDS) });
    await api.waitForHealth(200);
  });

  afterAll(async () => {
    await api?.close();
    await broker?.deleteQueues(prefix, SHARDS);
    await broker?.close();
  });

  async function queued(): Promise<number> {
    return Object.values(await broker.countAll(prefix, SHARDS)).reduce((sum, count) => sum + count, 0);
  }

  it.each([
    [
      'a value nested 100,000 levels deep',
      `[{"timestamp":"${VALID}","value":${deepArray}}]`,
      ['0.value must be a string'],
    ],
    ['a timestamp nested as deep', `[{"value":"v","timestamp":${deepObject}}]`, [`0.${BAD_TIMESTAMP}`]],
    [
      'an extra property nested as deep',
      `[{"timestamp":"${VALID}"},{"timestamp":"${VALID}","x":${deepObject}}]`,
      ['1.property x should not exist'],
    ],
    [
      'a body that is an array nested as deep',
      deepArray.replace('[]', '[{}]'),
      ['0 must be an object with a timestamp'],
    ],
    ['a body that is an object nested as deep', deepObject, 'body must be a non-empty JSON array of entries'],
    [
      'a __proto__ key',
      `[{"timestamp":"${VALID}"},{"timestamp":"${VALID}","__proto__":{"polluted":true}}]`,
      ['1.property __proto__ should not exist'],
    ],
    [
      'a constructor key',
      `[{"timestamp":"${VALID}","constructor":{"prototype":{"polluted":true}}}]`,
      ['0.property constructor should not exist'],
    ],
    [
      'keys named like Object.prototype members',
      `[{"timestamp":"${VALID}","toString":1,"hasOwnProperty":2,"__defineGetter__":3}]`,
      [
        '0.property toString should not exist',
        '0.property hasOwnProperty should not exist',
        '0.property __defineGetter__ should not exist',
      ],
    ],
  ])('%s: 400 naming the entry and the field, nothing published', async (_case, payload, message) => {
    const before = await queued();
    const response = await api.post(payload);
    expect(response.json()).toEqual({ statusCode: 400, error: 'Bad Request', message });
    expect(response.statusCode).toBe(400);
    expect(await queued()).toBe(before);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it.each([
    ['10,000 invalid entries', JSON.stringify(Array.from({ length: 10_000 }, () => ({ timestamp: 'no', value: 1 })))],
    ['one entry with 100,000 keys', entryWithManyKeys()],
  ])('%s: 400 with at most 100 messages, then how many more', async (_case, payload) => {
    const started = performance.now();
    const response = await api.post(payload);
    const ms = performance.now() - started;
    expect(response.statusCode).toBe(400);
    const { message } = response.json<{ message: string[] }>();
    expect(message).toHaveLength(101);
    expect(message[100]).toMatch(/^and \d+ more$/);
    console.log(`[hostile input] ${_case}: ${response.body.length} bytes of answer in ${Math.round(ms)} ms`);
  });

  it('still accepts a valid batch afterwards', async () => {
    expect((await api.post(makeEntries(20))).statusCode).toBe(201);
  });
});

/** The q-quantile of `values` in ms, rounded. */
function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0);
}

/**
 * A measurement, not an assertion on time: valid requests alone, then beside a stream of hostile
 * ones, against the built api; prints the figures (docs: issue 8, "invalid input costs about what
 * valid input costs").
 */
describe('valid requests beside hostile ones, on the built api (figures)', () => {
  let pipeline: Pipeline | undefined;
  afterAll(async () => pipeline?.dispose());

  it('answers every valid request 201 and every hostile one 400, and prints how long each took', async () => {
    pipeline = await Pipeline.create('api-hostile-load');
    const { url } = await pipeline.startApi();
    const post = async (payload: string): Promise<{ status: number; ms: number }> => {
      const started = performance.now();
      const response = await fetch(`${url}/message`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: payload,
        signal: AbortSignal.timeout(10_000),
      });
      await response.arrayBuffer();
      return { status: response.status, ms: performance.now() - started };
    };
    const valid = JSON.stringify(makeEntries(100));
    /** `requests` valid requests, four at a time; their times in ms. */
    const validLoad = async (requests: number): Promise<number[]> => {
      const times: number[] = [];
      const worker = async () => {
        while (times.length < requests) {
          const { status, ms } = await post(valid);
          expect(status).toBe(201);
          times.push(ms);
        }
      };
      await Promise.all([worker(), worker(), worker(), worker()]);
      return times;
    };
    const hostile = {
      '10,000 invalid entries': JSON.stringify(Array.from({ length: 10_000 }, () => ({ timestamp: 'no', value: 1 }))),
      'one entry with 100,000 keys': entryWithManyKeys(),
      '10,000 valid entries': JSON.stringify(makeEntries(10_000)),
    };

    await validLoad(100);
    const alone = await validLoad(300);
    let running = true;
    const hostileTimes: Record<string, number[]> = {};
    const hostileLoop = (async () => {
      while (running) {
        for (const [name, payload] of Object.entries(hostile)) {
          const { status, ms } = await post(payload);
          expect(status).toBe(name.includes('valid entries') && !name.includes('invalid') ? 201 : 400);
          (hostileTimes[name] ??= []).push(ms);
        }
      }
    })();
    const beside = await validLoad(300);
    running = false;
    await hostileLoop;

    const figures = [
      `valid 100-entry requests alone: p50 ${quantile(alone, 0.5)} ms, p99 ${quantile(alone, 0.99)} ms`,
      `beside hostile ones: p50 ${quantile(beside, 0.5)} ms, p99 ${quantile(beside, 0.99)} ms`,
      ...Object.entries(hostileTimes).map(
        ([name, times]) =>
          `${name}: ${times.length} sent, p50 ${quantile(times, 0.5)} ms, max ${quantile(times, 1)} ms`,
      ),
    ];
    console.log(`[hostile input]\n${figures.join('\n')}`);
  }, 120_000);
});

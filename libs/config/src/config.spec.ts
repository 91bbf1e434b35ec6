import { readApiConfig } from './api.config';
import { readConsumerConfig } from './consumer.config';
import { ConfigValidationError } from './env';
import { readRabbitmqConfig } from './rabbitmq.config';
import { readRuntimeConfig } from './runtime.config';

describe('configuration', () => {
  it('has the contract defaults', () => {
    expect(readRabbitmqConfig({})).toEqual({
      url: 'amqp://guest:guest@localhost:5672',
      shardsCount: 5,
      queuePrefix: 'messages',
      queueType: 'classic',
    });
    expect(readApiConfig({})).toEqual({
      host: '0.0.0.0',
      port: 3000,
      token: undefined,
      maxBodyBytes: 1_048_576,
      maxEntries: 10_000,
      publishTimeoutMs: 5_000,
      requestTimeoutMs: 30_000,
    });
    expect(readConsumerConfig({})).toEqual({
      host: '0.0.0.0',
      port: 3001,
      dataOutputDir: './data',
      shards: [0, 1, 2, 3, 4],
      workersMin: 3,
      workersMax: 4,
      batchSize: 5,
      batchFlushMs: 1_000,
      workerTimeoutMs: 10_000,
      prefetch: 200,
      sinkFsync: true,
      faultSinkStallEvery: 0,
    });
    expect(readRuntimeConfig({})).toEqual({ shutdownTimeoutMs: 30_000, logFormat: 'pretty', logLevel: 'info' });
  });

  it('reads what is set, and treats a blank value as unset', () => {
    expect(readRabbitmqConfig({ SHARDS_COUNT: '7', QUEUE_TYPE: 'quorum', QUEUE_PREFIX: 'orders' })).toMatchObject({
      shardsCount: 7,
      queueType: 'quorum',
      queuePrefix: 'orders',
    });
    expect(readConsumerConfig({ CONSUMER_SHARDS: '3, 1,3', SINK_FSYNC: 'false', BATCH_SIZE: ' ' })).toMatchObject({
      shards: [1, 3],
      sinkFsync: false,
      batchSize: 5,
    });
    expect(readApiConfig({ API_TOKEN: 's3cret', API_PORT: '8080' })).toMatchObject({ token: 's3cret', port: 8080 });
  });

  it.each([
    [
      () => readRabbitmqConfig({ SHARDS_COUNT: '0' }),
      'Invalid SHARDS_COUNT="0": expected a whole number from 1 to 1024',
    ],
    [
      () => readRabbitmqConfig({ SHARDS_COUNT: '2.5' }),
      'Invalid SHARDS_COUNT="2.5": expected a whole number from 1 to 1024',
    ],
    [
      () => readRabbitmqConfig({ RABBITMQ_URL: 'http://x' }),
      'Invalid RABBITMQ_URL="http://x": expected an amqp:// or amqps:// URL',
    ],
    [
      () => readRabbitmqConfig({ QUEUE_TYPE: 'stream' }),
      'Invalid QUEUE_TYPE="stream": expected one of classic, quorum',
    ],
    [() => readRabbitmqConfig({ QUEUE_PREFIX: 'a b' }), 'Invalid QUEUE_PREFIX="a b"'],
    [() => readApiConfig({ API_PORT: '70000' }), 'Invalid API_PORT="70000": expected a whole number from 0 to 65535'],
    [() => readApiConfig({ MAX_ENTRIES: 'many' }), 'Invalid MAX_ENTRIES="many"'],
    [
      () => readApiConfig({ REQUEST_TIMEOUT_MS: '50' }),
      'Invalid REQUEST_TIMEOUT_MS="50": expected a whole number from 100 to 3600000',
    ],
    [
      () => readConsumerConfig({ WORKERS_MIN: '5' }),
      'Invalid WORKERS_MIN="5": expected a whole number no larger than WORKERS_MAX (4)',
    ],
    [
      () => readConsumerConfig({ CONSUMER_SHARDS: '1,9' }),
      'Invalid CONSUMER_SHARDS="1,9": expected "all" or a comma list of shard numbers from 0 to 4',
    ],
    [() => readConsumerConfig({ SINK_FSYNC: 'maybe' }), 'Invalid SINK_FSYNC="maybe": expected true or false'],
    [() => readRuntimeConfig({ LOG_FORMAT: 'xml' }), 'Invalid LOG_FORMAT="xml": expected one of pretty, json'],
    [() => readRuntimeConfig({ LOG_LEVEL: 'loud' }), 'Invalid LOG_LEVEL="loud"'],
  ])('names the variable, the value and what is allowed (%#)', (read, message) => {
    expect(read).toThrow(ConfigValidationError);
    expect(read).toThrow(message);
  });
});

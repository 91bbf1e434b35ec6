import { Inject, Injectable } from '@nestjs/common';
import { ConfigService, type ConfigType } from '@nestjs/config';
import { Test } from '@nestjs/testing';
import { apiConfig, readApiConfig } from './api.config';
import { readApiAppConfig, readConsumerAppConfig } from './app.config';
import { AppConfigModule } from './app-config.module';
import { ConfigNotLoadedError } from './config-namespace';
import { readConsumerConfig } from './consumer.config';
import { ConfigValidationError } from './env';
import { rabbitmqConfig, readRabbitmqConfig } from './rabbitmq.config';
import { readRuntimeConfig, runtimeConfig } from './runtime.config';

describe('configuration', () => {
  it('has the contract defaults', () => {
    expect(readRabbitmqConfig({})).toEqual({
      urls: ['amqp://guest:guest@localhost:5672'],
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
      idempotencyTtlS: 86_400,
      redisUrl: undefined,
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
    });
    expect(readRuntimeConfig({})).toEqual({ shutdownTimeoutMs: 30_000, logFormat: 'pretty', logLevel: 'info' });
  });

  it('reads what is set, and treats a blank value as unset', () => {
    expect(readRabbitmqConfig({ SHARDS_COUNT: '7', QUEUE_TYPE: 'quorum', QUEUE_PREFIX: 'orders' })).toMatchObject({
      shardsCount: 7,
      queueType: 'quorum',
      queuePrefix: 'orders',
    });
    expect(
      readRabbitmqConfig({ RABBITMQ_URL: 'amqp://u:p@a:5672, amqps://u:p@b:5671 ,amqp://c', QUEUE_TYPE: 'quorum' }),
    ).toMatchObject({
      urls: ['amqp://u:p@a:5672', 'amqps://u:p@b:5671', 'amqp://c'],
      url: 'amqp://u:p@a:5672',
    });
    expect(readConsumerConfig({ CONSUMER_SHARDS: '3, 1,3', SINK_FSYNC: 'false', BATCH_SIZE: ' ' })).toMatchObject({
      shards: [1, 3],
      sinkFsync: false,
      batchSize: 5,
    });
    expect(readApiConfig({ API_TOKEN: 's3cret', API_PORT: '8080' })).toMatchObject({ token: 's3cret', port: 8080 });
    expect(readApiConfig({ IDEMPOTENCY_TTL_S: '60', REDIS_URL: 'redis://127.0.0.1:6379/2' })).toMatchObject({
      idempotencyTtlS: 60,
      redisUrl: 'redis://127.0.0.1:6379/2',
    });
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
      () => readRabbitmqConfig({ RABBITMQ_URL: 'amqp://a:5672,http://b:5672', QUEUE_TYPE: 'quorum' }),
      'Invalid RABBITMQ_URL="amqp://a:5672,http://b:5672": item 2 ("http://b:5672") is not an amqp:// or amqps:// URL',
    ],
    [
      () => readRabbitmqConfig({ RABBITMQ_URL: 'amqp://a:5672,,amqp://b:5672', QUEUE_TYPE: 'quorum' }),
      'item 2 ("") is not an amqp:// or amqps:// URL',
    ],
    [
      () => readRabbitmqConfig({ RABBITMQ_URL: 'amqp://a:5672, amqp://a:5672', QUEUE_TYPE: 'quorum' }),
      'item 2 ("amqp://a:5672") lists a node twice',
    ],
    [
      () => readRabbitmqConfig({ RABBITMQ_URL: 'amqp://a:5672,amqp://b:5672' }),
      'Invalid QUEUE_TYPE="classic": RABBITMQ_URL lists 2 nodes of a cluster, which needs quorum',
    ],
    [
      () => readRabbitmqConfig({ QUEUE_TYPE: 'stream' }),
      'Invalid QUEUE_TYPE="stream": expected one of classic, quorum',
    ],
    [() => readRabbitmqConfig({ QUEUE_PREFIX: 'a b' }), 'Invalid QUEUE_PREFIX="a b"'],
    [
      () => readRabbitmqConfig({ QUEUE_PREFIX: 'amq.orders' }),
      'Invalid QUEUE_PREFIX="amq.orders": expected a prefix not starting with "amq.", which RabbitMQ reserves',
    ],
    [() => readApiConfig({ API_PORT: '70000' }), 'Invalid API_PORT="70000": expected a whole number from 0 to 65535'],
    [() => readApiConfig({ MAX_ENTRIES: 'many' }), 'Invalid MAX_ENTRIES="many"'],
    [
      () => readApiConfig({ REQUEST_TIMEOUT_MS: '50' }),
      'Invalid REQUEST_TIMEOUT_MS="50": expected a whole number from 100 to 3600000',
    ],
    [
      () => readApiConfig({ PUBLISH_TIMEOUT_MS: '10' }),
      'Invalid PUBLISH_TIMEOUT_MS="10": expected a whole number from 50 to 600000',
    ],
    [
      () => readConsumerConfig({ WORKER_TIMEOUT_MS: '50' }),
      'Invalid WORKER_TIMEOUT_MS="50": expected a whole number from 100 to 3600000',
    ],
    [
      () => readApiConfig({ IDEMPOTENCY_TTL_S: '0' }),
      'Invalid IDEMPOTENCY_TTL_S="0": expected a whole number from 1 to 2592000',
    ],
    [
      () => readApiConfig({ REDIS_URL: 'localhost:6379' }),
      'Invalid REDIS_URL="localhost:6379": expected a redis:// or rediss:// URL with a host',
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

describe('loading once, before Nest starts', () => {
  it('checks CONSUMER_SHARDS against the shard count it is given, not one it reads again', () => {
    expect(readConsumerConfig({ CONSUMER_SHARDS: '6' }, { shardsCount: 7 }).shards).toEqual([6]);
    expect(() => readConsumerConfig({ CONSUMER_SHARDS: '6', SHARDS_COUNT: '7' }, { shardsCount: 5 })).toThrow(
      'Invalid CONSUMER_SHARDS="6"',
    );
    expect(readConsumerAppConfig({ SHARDS_COUNT: '7', CONSUMER_SHARDS: '6' })).toMatchObject({
      rabbitmq: { shardsCount: 7 },
      consumer: { shards: [6] },
    });
  });

  it('reads every variable of an app in one call, so that any bad one stops it before Nest starts', () => {
    expect(Object.keys(readApiAppConfig({}))).toEqual(['rabbitmq', 'api', 'runtime']);
    expect(() => readApiAppConfig({ LOG_LEVEL: 'loud' })).toThrow(ConfigValidationError);
    expect(() => readConsumerAppConfig({ BATCH_SIZE: '0' })).toThrow('Invalid BATCH_SIZE="0"');
  });

  @Injectable()
  class NeedsApiConfig {
    constructor(@Inject(apiConfig.KEY) readonly api: ConfigType<typeof apiConfig>) {}
  }

  it('hands Nest the values read before it started, under each namespace, without reading the environment', async () => {
    const config = readApiAppConfig({ API_PORT: '8080', SHARDS_COUNT: '3' });
    const before = process.env.API_PORT;
    process.env.API_PORT = '9999';
    try {
      const module = await Test.createTestingModule({
        imports: [AppConfigModule.forRoot(config)],
        providers: [NeedsApiConfig],
      }).compile();
      expect(module.get(NeedsApiConfig).api).toBe(config.api);
      expect(module.get(rabbitmqConfig.KEY)).toBe(config.rabbitmq);
      expect(module.get(runtimeConfig.KEY)).toBe(config.runtime);
      const service = module.get(ConfigService);
      expect(service.get('api.port')).toBe(8080);
      expect(service.get('API_PORT')).toBeUndefined();
      await module.close();
    } finally {
      if (before === undefined) delete process.env.API_PORT;
      else process.env.API_PORT = before;
    }
  });

  it('a namespace reads nothing by itself: without AppConfigModule it says what is missing', async () => {
    expect(() => apiConfig()).toThrow(ConfigNotLoadedError);
    await expect(Test.createTestingModule({ providers: [NeedsApiConfig] }).compile()).rejects.toThrow(
      /CONFIGURATION\(api\)/,
    );
  });
});

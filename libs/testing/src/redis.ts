import Redis from 'ioredis';
import { withDeadline } from './wait-for';

/** The Redis the tests run against: `REDIS_URL`, or the local default. */
export function testRedisUrl(): string {
  const url = process.env.REDIS_URL?.trim();
  return url === undefined || url === '' ? 'redis://127.0.0.1:6379' : url;
}

/** The namespace under which an api with QUEUE_PREFIX `prefix` keeps its Idempotency-Keys in Redis. */
export function idempotencyNamespace(prefix: string): string {
  return `${prefix}:idempotency:`;
}

/** A Redis client for looking at and cleaning up what a test's apps stored. */
export class TestRedis {
  private constructor(readonly client: Redis) {}

  /** Connects to `url` (default: the test Redis); throws a clear error if it is not reachable. */
  static async connect(url = testRedisUrl()): Promise<TestRedis> {
    const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on('error', () => undefined);
    try {
      await withDeadline(client.connect(), 5_000, `Redis at ${url}`);
    } catch (error) {
      client.disconnect();
      throw new Error(`the tests need Redis at ${url}; is it running?`, { cause: error });
    }
    return new TestRedis(client);
  }

  /** Every key under `namespace`, without it. */
  async keys(namespace: string): Promise<string[]> {
    const keys = await this.client.keys(`${namespace}*`);
    return keys.map((key) => key.slice(namespace.length)).sort();
  }

  /** Deletes every key under `namespace`; returns how many there were. */
  async deleteNamespace(namespace: string): Promise<number> {
    const keys = await this.client.keys(`${namespace}*`);
    return keys.length === 0 ? 0 : this.client.del(...keys);
  }

  async close(): Promise<void> {
    await this.client.quit();
  }
}

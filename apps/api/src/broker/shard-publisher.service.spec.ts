import { Registry } from 'prom-client';
import { ApiMetrics } from '../metrics/api.metrics';
import type { ApiConfig } from '@app/config';
import { BrokerUnavailableError, ShardPublisher } from './shard-publisher.service';

const PUBLISH_TIMEOUT_MS = 50;

interface Dispatch {
  pattern: string;
  data: unknown;
  confirm: () => void;
  fail: (error: Error) => void;
}

/** Stands in for ShardPublisherClient: every publish waits for the test to confirm or fail it. */
class FakeClient {
  ready = true;
  readonly dispatches: Dispatch[] = [];
  readonly close = jest.fn(async () => undefined);

  isReady(): boolean {
    return this.ready;
  }

  dispatchConfirmed(pattern: string, data: unknown): Promise<void> {
    return new Promise((confirm, fail) => this.dispatches.push({ pattern, data, confirm, fail }));
  }
}

describe('ShardPublisher', () => {
  let client: FakeClient;
  let publisher: ShardPublisher;

  beforeEach(() => {
    publisher = new ShardPublisher(
      { url: 'amqp://127.0.0.1:1', shardsCount: 5, queuePrefix: 'unit', queueType: 'classic' },
      { publishTimeoutMs: PUBLISH_TIMEOUT_MS } as ApiConfig,
      new ApiMetrics(new Registry()),
    );
    client = new FakeClient();
    Object.defineProperty(publisher, 'client', { value: client });
  });

  const entries = [{ id: 'a', timestamp: '2019-10-12T08:10:53Z' }];

  it('refuses at once while the broker is away', async () => {
    client.ready = false;
    await expect(publisher.publish(3, entries)).rejects.toThrow(
      new BrokerUnavailableError('RabbitMQ is not reachable; nothing was published'),
    );
    expect(client.dispatches).toHaveLength(0);
  });

  it('sends a persistent JSON record with the publish timeout to the shard queue, resolving on confirm', async () => {
    const published = publisher.publish(3, entries);
    expect(client.dispatches).toHaveLength(1);
    const [{ pattern, data, confirm }] = client.dispatches;
    expect(pattern).toBe('unit.shard.3');
    expect(data).toMatchObject({
      data: { shard: 3, entries },
      options: { persistent: true, contentType: 'application/json', timeout: PUBLISH_TIMEOUT_MS },
    });
    confirm();
    await expect(published).resolves.toBeUndefined();
  });

  it('rejects naming the shard and the wait when no confirm comes in time', async () => {
    const published = publisher.publish(3, entries);
    // amqp-connection-manager's words when its publish timeout passes.
    client.dispatches[0].fail(new Error('timeout'));
    await expect(published).rejects.toThrow(
      `RabbitMQ did not confirm the entries of shard 3: no confirm within ${PUBLISH_TIMEOUT_MS} ms`,
    );
  });

  it('reports unhealthy from a publish that timed out until the next confirm', async () => {
    expect(publisher.isHealthy()).toBe(true);
    const stalled = publisher.publish(3, entries);
    client.dispatches[0].fail(new Error('timeout'));
    await expect(stalled).rejects.toThrow(BrokerUnavailableError);
    expect(publisher.isReady()).toBe(true);
    expect(publisher.isHealthy()).toBe(false);

    const next = publisher.publish(3, entries);
    client.dispatches[1].confirm();
    await next;
    expect(publisher.isHealthy()).toBe(true);
  });

  it('turns healthy again two publish timeouts after the last one, even without traffic', async () => {
    const now = jest.spyOn(Date, 'now').mockReturnValue(1_000_000);
    try {
      const stalled = publisher.publish(3, entries);
      client.dispatches[0].fail(new Error('timeout'));
      await expect(stalled).rejects.toThrow(BrokerUnavailableError);
      now.mockReturnValue(1_000_000 + 2 * PUBLISH_TIMEOUT_MS - 1);
      expect(publisher.isHealthy()).toBe(false);
      now.mockReturnValue(1_000_000 + 2 * PUBLISH_TIMEOUT_MS);
      expect(publisher.isHealthy()).toBe(true);
    } finally {
      now.mockRestore();
    }
  });

  it('rejects naming the cause when the broker refuses', async () => {
    const published = publisher.publish(1, entries);
    client.dispatches[0].fail(new Error('nacked'));
    await expect(published).rejects.toThrow(BrokerUnavailableError);
    await expect(published).rejects.toThrow('RabbitMQ did not confirm the entries of shard 1: nacked');
  });

  it('closes the client only once in-flight publishes have settled', async () => {
    const published = publisher.publish(2, entries);
    const closed = publisher.onApplicationShutdown();
    await new Promise((resolve) => setImmediate(resolve));
    expect(client.close).not.toHaveBeenCalled();

    client.dispatches[0].confirm();
    await closed;
    await expect(published).resolves.toBeUndefined();
    expect(client.close).toHaveBeenCalledTimes(1);
  });
});

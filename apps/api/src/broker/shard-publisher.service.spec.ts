import { Registry } from 'prom-client';
import { ApiMetrics } from '../metrics/api.metrics';
import type { ApiConfig } from '@app/config';
import { SHARDS_COUNT_HEADER, SHARD_MESSAGE_MAX_ENTRIES, type WireEntry, decodeShardPacket } from '@app/contracts';
import { entryTimestamp } from '@app/testing';
import { BrokerUnavailableError, ShardPublisher } from './shard-publisher.service';

const PUBLISH_TIMEOUT_MS = 50;

interface Dispatch {
  routingKey: string;
  content: Buffer;
  options: unknown;
  confirm: () => void;
  fail: (error: Error) => void;
}

/** Stands in for ShardPublisherClient: every publish waits for the test to confirm or fail it. */
class FakeClient {
  ready = true;
  blocked?: string;
  readonly dispatches: Dispatch[] = [];
  readonly close = jest.fn(async () => undefined);

  isReady(): boolean {
    return this.ready;
  }

  blockedReason(): string | undefined {
    return this.blocked;
  }

  dispatchConfirmed(routingKey: string, content: Buffer, options: unknown): Promise<void> {
    return new Promise((confirm, fail) => this.dispatches.push({ routingKey, content, options, confirm, fail }));
  }
}

describe('ShardPublisher', () => {
  let client: FakeClient;
  let publisher: ShardPublisher;

  beforeEach(() => {
    publisher = new ShardPublisher(
      {
        urls: ['amqp://127.0.0.1:1'],
        url: 'amqp://127.0.0.1:1',
        shardsCount: 5,
        queuePrefix: 'unit',
        queueType: 'classic',
      },
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

  it('refuses at once, naming the alarm, while the broker blocks publishing; publishes again once it does not', async () => {
    client.blocked = 'low on memory';
    expect(publisher.blockedReason()).toBe('low on memory');
    await expect(publisher.publish(3, entries)).rejects.toThrow(
      new BrokerUnavailableError('RabbitMQ blocks publishing (low on memory); nothing was published'),
    );
    expect(client.dispatches).toHaveLength(0);

    client.blocked = undefined;
    const published = publisher.publish(3, entries);
    expect(client.dispatches).toHaveLength(1);
    client.dispatches[0].confirm();
    await expect(published).resolves.toBeUndefined();
  });

  it('sends the encoded packet, persistent JSON with the publish timeout and x-shards-count, resolving on confirm', async () => {
    const published = publisher.publish(3, entries);
    expect(client.dispatches).toHaveLength(1);
    const [{ routingKey, content, options, confirm }] = client.dispatches;
    expect(routingKey).toBe('unit.shard.3');
    expect(decodeShardPacket(content, 3, 5)).toEqual(entries);
    expect(options).toEqual({
      persistent: true,
      contentType: 'application/json',
      timeout: PUBLISH_TIMEOUT_MS,
      headers: { [SHARDS_COUNT_HEADER]: 5 },
    });
    expect(SHARDS_COUNT_HEADER).toBe('x-shards-count');
    confirm();
    await expect(published).resolves.toBeUndefined();
  });

  it('splits a large group into messages of at most 250 entries, in order, and resolves once all are confirmed', async () => {
    // Seconds 3, 8, 13 ... all fall in shard 3 of 5.
    const many: WireEntry[] = Array.from({ length: 2 * SHARD_MESSAGE_MAX_ENTRIES + 1 }, (_, i) => ({
      id: `id-${i}`,
      timestamp: entryTimestamp((53 + 5 * i) * 1000),
    }));
    let settled = false;
    const published = publisher.publish(3, many).then(() => (settled = true));
    expect(client.dispatches.map(({ content }) => decodeShardPacket(content, 3, 5).length)).toEqual([250, 250, 1]);
    expect(client.dispatches.flatMap(({ content }) => decodeShardPacket(content, 3, 5))).toEqual(many);

    client.dispatches[0].confirm();
    client.dispatches[2].confirm();
    await new Promise((resolve) => setImmediate(resolve));
    expect(settled).toBe(false);
    client.dispatches[1].confirm();
    await published;
    expect(settled).toBe(true);
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

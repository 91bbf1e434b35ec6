import { Subject } from 'rxjs';
import type { ApiConfig, RabbitmqConfig } from '@app/config';
import { BrokerUnavailableError, ShardPublisher } from './shard-publisher.service';

const PUBLISH_TIMEOUT_MS = 50;

/** Stands in for ShardPublisherClient: every emit waits for the test to confirm or fail it. */
class FakeClient {
  ready = true;
  readonly emits: Subject<void>[] = [];
  readonly close = jest.fn(async () => undefined);

  isReady(): boolean {
    return this.ready;
  }

  emit(): Subject<void> {
    const confirm = new Subject<void>();
    this.emits.push(confirm);
    return confirm;
  }
}

describe('ShardPublisher', () => {
  let client: FakeClient;
  let publisher: ShardPublisher;

  beforeEach(() => {
    publisher = new ShardPublisher(
      { url: 'amqp://127.0.0.1:1', shardsCount: 5, queuePrefix: 'unit', queueType: 'classic' } as RabbitmqConfig,
      { publishTimeoutMs: PUBLISH_TIMEOUT_MS } as ApiConfig,
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
    expect(client.emits).toHaveLength(0);
  });

  it('resolves on the confirm', async () => {
    const published = publisher.publish(3, entries);
    client.emits[0].complete();
    await expect(published).resolves.toBeUndefined();
  });

  it('rejects naming the shard and the wait when no confirm comes within PUBLISH_TIMEOUT_MS', async () => {
    await expect(publisher.publish(3, entries)).rejects.toThrow(
      `RabbitMQ did not confirm the entries of shard 3: no confirm within ${PUBLISH_TIMEOUT_MS} ms`,
    );
  });

  it('rejects naming the cause when the broker refuses', async () => {
    const published = publisher.publish(1, entries);
    client.emits[0].error(new Error('nacked'));
    await expect(published).rejects.toThrow('RabbitMQ did not confirm the entries of shard 1: nacked');
  });

  it('closes the client only once in-flight publishes have settled', async () => {
    const published = publisher.publish(2, entries);
    const closed = publisher.onApplicationShutdown();
    await new Promise((resolve) => setImmediate(resolve));
    expect(client.close).not.toHaveBeenCalled();

    client.emits[0].complete();
    await closed;
    await expect(published).resolves.toBeUndefined();
    expect(client.close).toHaveBeenCalledTimes(1);
  });
});

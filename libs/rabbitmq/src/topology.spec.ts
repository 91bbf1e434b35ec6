import type { Channel } from 'amqplib';
import { TopologyPerConnection, deadLetterQueueOptions, shardQueueOptions } from './topology';

function fakeChannel(connection: object, fail = false) {
  const calls: string[] = [];
  const channel = {
    connection,
    assertQueue: async (queue: string) => {
      calls.push(queue);
      if (fail) throw new Error('PRECONDITION_FAILED');
    },
    bindQueue: async () => undefined,
  };
  return { channel: channel as unknown as Channel, calls };
}

describe('TopologyPerConnection', () => {
  const topology = new TopologyPerConnection({ queuePrefix: 'p', shardsCount: 3, queueType: 'classic' });

  it('declares the queues once per connection, however many channels it has', async () => {
    const connection = {};
    const a = fakeChannel(connection);
    const b = fakeChannel(connection);
    await Promise.all([topology.ensure(a.channel), topology.ensure(b.channel)]);
    expect(a.calls).toEqual(['p.dead-letter', 'p.shard.0', 'p.shard.1', 'p.shard.2']);
    expect(b.calls).toEqual([]);

    const reconnected = fakeChannel({});
    await topology.ensure(reconnected.channel);
    expect(reconnected.calls).toHaveLength(4);
  });

  it('forgets a failed declaration, so the next channel tries again', async () => {
    const connection = {};
    const failing = fakeChannel(connection, true);
    await expect(topology.ensure(failing.channel)).rejects.toThrow('PRECONDITION_FAILED');
    const next = fakeChannel(connection);
    await topology.ensure(next.channel);
    expect(next.calls).toHaveLength(4);
  });
});

describe('topology arguments', () => {
  const quorum = { queuePrefix: 'p', shardsCount: 2, queueType: 'quorum' as const };
  const classic = { ...quorum, queueType: 'classic' as const };

  it('quorum: replicated shard and dead-letter queues, a delivery limit, at-least-once dead-lettering', () => {
    expect(shardQueueOptions(quorum)).toEqual({
      durable: true,
      arguments: {
        'x-queue-type': 'quorum',
        'x-delivery-limit': 100,
        'x-dead-letter-strategy': 'at-least-once',
        'x-overflow': 'reject-publish',
        'x-dead-letter-exchange': '',
        'x-dead-letter-routing-key': 'p.dead-letter',
      },
    });
    expect(deadLetterQueueOptions(quorum)).toEqual({ durable: true, arguments: { 'x-queue-type': 'quorum' } });
  });

  it('classic: none of the quorum arguments, which a classic queue does not know', () => {
    expect(shardQueueOptions(classic).arguments).toEqual({
      'x-queue-version': 2,
      'x-dead-letter-exchange': '',
      'x-dead-letter-routing-key': 'p.dead-letter',
    });
    expect(deadLetterQueueOptions(classic)).toEqual({ durable: true, arguments: { 'x-queue-version': 2 } });
  });
});

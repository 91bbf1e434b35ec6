import type { Channel } from 'amqplib';
import { TopologyPerConnection } from './topology';

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

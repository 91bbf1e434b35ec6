import { RmqRecordBuilder } from '@nestjs/microservices';
import { ENTRIES_PATTERN, type ShardMessage, decodeShardPacket } from '@app/contracts';
import { ShardPacketSerializer } from './shard-packet.serializer';

const message: ShardMessage = { shard: 2, entries: [{ id: 'a', timestamp: '2019-10-12T08:10:52Z', value: 'x' }] };

describe('ShardPacketSerializer', () => {
  const serializer = new ShardPacketSerializer();

  it('puts ENTRIES_PATTERN on the wire, not the routing key, and passes the record options beside it', () => {
    const options = { persistent: true, contentType: 'application/json' };
    const record = new RmqRecordBuilder(message).setOptions(options).build();
    expect(serializer.serialize({ pattern: 'orders.shard.2', data: record })).toEqual({
      pattern: ENTRIES_PATTERN,
      data: message,
      options: { persistent: true, contentType: 'application/json' },
    });
  });

  it('sends plain data as it is, without options', () => {
    const packet = serializer.serialize({ pattern: 'orders.shard.2', data: message });
    expect(packet).toEqual({ pattern: ENTRIES_PATTERN, data: message });
    expect(packet).not.toHaveProperty('options');
  });

  it('gives the bytes the consumer decodes', () => {
    const { options: _options, ...packet } = serializer.serialize({
      pattern: 'orders.shard.2',
      data: new RmqRecordBuilder(message).build(),
    });
    expect(decodeShardPacket(Buffer.from(JSON.stringify(packet)), 2, 5)).toEqual(message.entries);
  });
});

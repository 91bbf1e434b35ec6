import { type ReadPacket, RmqRecord, type Serializer } from '@nestjs/microservices';
import { ENTRIES_PATTERN } from '@app/contracts';

/**
 * The event pattern doubles as the routing key (the shard queue's name), which is no business of
 * the consumer: on the wire every shard message carries the same ENTRIES_PATTERN. The record's
 * options (persistent, timeout) travel beside the packet to the channel, as with Nest's own.
 */
export class ShardPacketSerializer implements Serializer<ReadPacket, ReadPacket & { options?: unknown }> {
  serialize(packet: ReadPacket): ReadPacket & { options?: unknown } {
    const record: unknown = packet.data;
    return record instanceof RmqRecord
      ? { pattern: ENTRIES_PATTERN, data: record.data, options: record.options }
      : { pattern: ENTRIES_PATTERN, data: record };
  }
}

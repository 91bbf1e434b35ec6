import { randomUUID } from 'node:crypto';
import { connect } from 'amqplib';
import { type WireEntry, encodeShardPacket } from '@app/contracts';
import { readRabbitmqConfig } from '@app/config';
import { assertTopology } from '@app/rabbitmq';
import { shardOf, shardQueueName } from '@app/sharding';
import { entryTimestamp } from '@app/testing';

export interface BacklogOptions {
  url: string;
  prefix: string;
  shardsCount: number;
  entries: number;
  /** Entries per simulated request; each request becomes one message per shard, as the api sends. */
  perRequest: number;
}

/** Publishes `entries` entries into the shard queues exactly as the api would, with confirms. */
export async function preloadBacklog(options: BacklogOptions): Promise<void> {
  const connection = await connect(options.url);
  try {
    const channel = await connection.createConfirmChannel();
    await assertTopology(channel, {
      queuePrefix: options.prefix,
      shardsCount: options.shardsCount,
      // The consumer under test declares the same queues: on a cluster (QUEUE_TYPE=quorum) they must match.
      queueType: readRabbitmqConfig().queueType,
    });
    for (let sent = 0; sent < options.entries;) {
      const count = Math.min(options.perRequest, options.entries - sent);
      const byShard = new Map<number, WireEntry[]>();
      for (let i = 0; i < count; i++) {
        const timestamp = entryTimestamp((sent + i) * 137);
        const shard = shardOf(timestamp, options.shardsCount);
        const entry = { id: randomUUID(), timestamp, value: `bench-${sent + i}` };
        byShard.set(shard, [...(byShard.get(shard) ?? []), entry]);
      }
      for (const [shard, entries] of byShard) {
        channel.sendToQueue(shardQueueName(options.prefix, shard), encodeShardPacket({ shard, entries }), {
          persistent: true,
        });
      }
      sent += count;
      if (sent % (options.perRequest * 200) === 0) await channel.waitForConfirms();
    }
    await channel.waitForConfirms();
  } finally {
    await connection.close();
  }
}

import type { Channel, Options } from 'amqplib';
import { allShardQueueNames, deadLetterQueueName } from '@app/sharding';
import type { QueueType } from '@app/config';
import { QUORUM_DELIVERY_LIMIT, SHARD_EXCHANGE } from './rabbitmq.constants';

export interface TopologyOptions {
  queuePrefix: string;
  shardsCount: number;
  queueType: QueueType;
}

function typeArguments(queueType: QueueType): Record<string, unknown> {
  // Classic queue version 2 keeps a much lower publish p99 than version 1 on RabbitMQ 3.10+.
  return queueType === 'quorum' ? { 'x-queue-type': 'quorum' } : { 'x-queue-version': 2 };
}

/**
 * A quorum shard queue's own arguments (docs/cluster.md, section 3): a delivery limit, since
 * RabbitMQ before 4.0 has none and a message that crashes consumers would loop for ever; and
 * at-least-once dead-lettering, which keeps a dead letter in the shard queue until the dead-letter
 * queue has confirmed it, so that a node lost mid-way loses none. RabbitMQ honours at-least-once
 * only with `reject-publish` overflow (else it falls back to at-most-once); the shard queues have
 * no length limit, so it refuses nothing.
 */
const QUORUM_SHARD_ARGUMENTS = {
  'x-delivery-limit': QUORUM_DELIVERY_LIMIT,
  'x-dead-letter-strategy': 'at-least-once',
  'x-overflow': 'reject-publish',
} as const;

/**
 * How every shard queue is declared; both apps must use exactly these arguments (a queue that
 * exists with others refuses the declaration with 406 PRECONDITION_FAILED).
 */
export function shardQueueOptions(topology: TopologyOptions): Options.AssertQueue {
  const quorumOnly = topology.queueType === 'quorum' ? QUORUM_SHARD_ARGUMENTS : {};
  return {
    durable: true,
    arguments: {
      ...typeArguments(topology.queueType),
      ...quorumOnly,
      'x-dead-letter-exchange': '',
      'x-dead-letter-routing-key': deadLetterQueueName(topology.queuePrefix),
    },
  };
}

/** The dead-letter queue: a quorum queue too on a cluster, so that a node's loss does not take it. */
export function deadLetterQueueOptions(topology: TopologyOptions): Options.AssertQueue {
  return { durable: true, arguments: typeArguments(topology.queueType) };
}

/**
 * Declares the whole topology: the dead-letter queue and every shard queue, each bound to
 * SHARD_EXCHANGE under its own name. Idempotent, so both apps call it on every (re)connect and
 * entries published before any consumer runs wait in their queue.
 */
export async function assertTopology(channel: Channel, topology: TopologyOptions): Promise<void> {
  await channel.assertQueue(deadLetterQueueName(topology.queuePrefix), deadLetterQueueOptions(topology));
  const options = shardQueueOptions(topology);
  for (const queue of allShardQueueNames(topology.queuePrefix, topology.shardsCount)) {
    await channel.assertQueue(queue, options);
    await channel.bindQueue(queue, SHARD_EXCHANGE, queue);
  }
}

/**
 * Declares the topology once per connection rather than once per channel: the first channel
 * set up on a connection declares it, the others wait for that. A failed declaration is forgotten,
 * so the next channel tries again.
 */
export class TopologyPerConnection {
  private readonly declared = new WeakMap<object, Promise<void>>();

  constructor(private readonly topology: TopologyOptions) {}

  /** Resolves once the topology is declared on `channel`'s connection. */
  ensure(channel: Channel): Promise<void> {
    const connection = channel.connection as object;
    let declared = this.declared.get(connection);
    if (declared === undefined) {
      declared = assertTopology(channel, this.topology);
      this.declared.set(connection, declared);
      declared.catch(() => this.declared.delete(connection));
    }
    return declared;
  }
}

import { Logger } from '@nestjs/common';
import { ClientRMQ, type RmqOptions } from '@nestjs/microservices';
import type { Channel, Message } from 'amqplib';
import type { AmqpConnectionManager, ChannelWrapper, Options } from 'amqp-connection-manager';
import { randomUUID } from 'node:crypto';
import { assertTopology, type TopologyOptions } from '@app/rabbitmq';

/** The broker confirmed a message but routed it to no queue (its shard queue is gone). */
export class UnroutableMessageError extends Error {
  constructor(routingKey: string) {
    super(`no queue ${routingKey} to route to; it was deleted since the api declared it`);
    this.name = UnroutableMessageError.name;
  }
}

/** amqp-connection-manager's publish timeout rejects with a plain `Error('timeout')`. */
export function isPublishTimeout(error: unknown): boolean {
  return error instanceof Error && error.message === 'timeout';
}

/** amqplib rejects a publish the broker nacked with a plain `Error('message nacked')`. */
export function isNack(error: unknown): boolean {
  return error instanceof Error && error.message === 'message nacked';
}

/**
 * Nest's RMQ client that declares the whole topology on every (re)connect before it publishes,
 * knows whether it can publish right now, and publishes bytes already encoded (libs/contracts'
 * encodeShardPackets) with a confirm. It relies on ClientRMQ's connection and channel handling;
 * shard-publisher.client.spec.ts pins the internals it overrides or calls. A nack, or a timeout
 * with nothing confirmed meanwhile, recycles the connection once (recycle()).
 */
export class ShardPublisherClient extends ClientRMQ {
  private readonly channelLogger = new Logger(ShardPublisherClient.name);
  private ready = false;
  private closing = false;
  /** Ids of mandatory messages the broker returned: a return comes before the message's confirm. */
  private readonly returned = new Set<string>();
  /** Counts connects: a failure recycles only the connection it happened on, and that one once. */
  private connection = 0;
  private recycled = 0;
  /** When a publish was last confirmed (performance.now()). */
  private lastConfirmAt = 0;
  /** Why the broker blocks this connection's publishes (its memory or disk alarm), while it does. */
  private blockedBy?: string;

  constructor(
    options: Required<RmqOptions>['options'],
    private readonly topology: TopologyOptions,
  ) {
    super(options);
    this.on('connect', () => {
      this.connection++;
      this.blockedBy = undefined;
    });
    this.on('disconnect', () => {
      this.ready = false;
      this.blockedBy = undefined;
    });
    // RabbitMQ tells a connection it stopped reading its publishes (connection.blocked) when one
    // arrives during a resource alarm, and when the alarm clears (connection.unblocked).
    this.on('blocked', ({ reason }) => {
      this.blockedBy = reason;
    });
    this.on('unblocked', () => {
      this.blockedBy = undefined;
    });
  }

  /** amqp-connection-manager's `connectFailed({ err, url })`, which Nest's RmqEvents do not list: an attempt on one node failed. */
  onConnectFailed(listener: (event: { err?: unknown; url?: unknown }) => void): void {
    this.on('connectFailed' as 'error', listener as never);
  }

  /** True from a recycle() until the next connect: the disconnect meanwhile is ours, not an outage. */
  isRecycling(): boolean {
    return this.recycled === this.connection && this.recycled > 0;
  }

  /**
   * Why RabbitMQ refuses this connection's publishes right now (e.g. "low on memory"), or undefined.
   * An alarm holds for the whole cluster, so another node would refuse them too.
   */
  blockedReason(): string | undefined {
    return this.blockedBy;
  }

  /** True once connected and the topology is declared; false while the broker is away. */
  isReady(): boolean {
    return this.ready;
  }

  /**
   * Nest's channel has no 'error' listener, so a refused declaration (406: the queues exist with
   * other arguments, e.g. another QUEUE_TYPE) would crash the process; log it and stay unready.
   */
  override createChannel(): Promise<void> {
    const created = super.createChannel();
    (this.channel as Channel | null)?.on('error', (error: Error) => {
      this.ready = false;
      // Closing mid-declaration fails the pending declarations ("Channel ended"): nothing to report.
      if (!this.closing) this.channelLogger.error(`cannot publish: ${error.message}`);
    });
    return created;
  }

  /** Unready from the start of the close, so nothing publishes on a channel going away. */
  override async close(): Promise<void> {
    this.closing = true;
    this.ready = false;
    await super.close();
  }

  /**
   * Publishes one encoded message to the exchange and resolves on the broker's confirm. This
   * replaces emit(), whose three Observables and Subject per call cost more than the publish
   * itself, and the serializer, since the contract's encoder writes the bytes. Call it only while
   * isReady(): unlike emit(), it does not wait for a connection. The message is mandatory: a
   * broker with no queue to route it to confirms it all the same, so a return turns the confirm
   * into UnroutableMessageError. `messageId` is random unless the caller fixes it.
   */
  async dispatchConfirmed(
    routingKey: string,
    content: Buffer,
    options: Options.Publish,
    messageId: string = randomUUID(),
  ): Promise<void> {
    const channel = this.channel as ChannelWrapper | null;
    if (channel === null) throw new Error('no channel to publish on: connect first');
    const connection = this.connection;
    const sentAt = performance.now();
    try {
      await channel.publish(this.options.exchange ?? '', routingKey, content, {
        ...options,
        messageId,
        mandatory: true,
      });
      this.lastConfirmAt = performance.now();
      if (this.returned.has(messageId)) throw new UnroutableMessageError(routingKey);
    } catch (error) {
      // A timeout while other publishes are confirmed is a slow broker, not a stuck channel; one
      // while the broker blocks publishes is its alarm, which a new connection would meet too.
      const stuck = isPublishTimeout(error) && this.lastConfirmAt < sentAt && this.blockedBy === undefined;
      if (isNack(error) || stuck) {
        this.recycle(connection, isNack(error) ? 'nacked' : 'not confirmed in time');
      }
      throw error;
    } finally {
      this.returned.delete(messageId);
    }
  }

  /**
   * Closes the connection a publish failed on, once per connection, and stays unready (503 at
   * once) until the next connect, which amqp-connection-manager makes RECONNECT_SECONDS later on
   * the next node of its list. Why: on RabbitMQ before 3.12.5 a channel whose first publish to a
   * quorum queue came while the queue's record still named a leader that is gone is nacked on that
   * queue until the old leader's node returns; a new channel reads the repaired record
   * (docs/cluster.md, section 4). A connection that confirms nothing moves to another node before
   * the heartbeats would give up. Closing, not amqp-connection-manager's reconnect(): reconnect()
   * waits for the broker's close-ok, which a node that died meanwhile never sends, and would then
   * never connect again; a close always ends in the 'close' event the manager reconnects on.
   */
  private recycle(connection: number, why: string): void {
    if (this.closing || connection !== this.connection || this.recycled === connection) return;
    const amqp = this.unwrap<AmqpConnectionManager>().connection;
    if (amqp === undefined) return;
    this.recycled = connection;
    this.ready = false;
    this.channelLogger.warn(`a publish was ${why}: reconnecting so that the channels start afresh`);
    // The 'close' event follows however the close ends (close-ok, socket error, heartbeat timeout).
    amqp.close().catch((error: unknown) => {
      this.channelLogger.debug(`the recycled connection closed with ${String(error)}`);
    });
  }

  override async setupChannel(channel: Channel, resolve: () => void): Promise<void> {
    channel.on('return', (message: Message) => {
      const id: unknown = message.properties.messageId;
      if (typeof id === 'string') this.returned.add(id);
    });
    await assertTopology(channel, this.topology);
    await super.setupChannel(channel, resolve);
    this.ready = true;
  }
}

import { Logger } from '@nestjs/common';
import { ClientRMQ, type RmqOptions } from '@nestjs/microservices';
import type { Channel, Message } from 'amqplib';
import type { ChannelWrapper, Options } from 'amqp-connection-manager';
import { randomUUID } from 'node:crypto';
import { assertTopology, type TopologyOptions } from '@app/rabbitmq';

/** The broker confirmed a message but routed it to no queue (its shard queue is gone). */
export class UnroutableMessageError extends Error {
  constructor(routingKey: string) {
    super(`no queue ${routingKey} to route to; it was deleted since the api declared it`);
    this.name = UnroutableMessageError.name;
  }
}

/**
 * Nest's RMQ client that declares the whole topology on every (re)connect before it publishes,
 * knows whether it can publish right now, and publishes bytes already encoded (libs/contracts'
 * encodeShardPackets) with a confirm. It relies on ClientRMQ's connection and channel handling;
 * shard-publisher.client.spec.ts pins the internals it overrides or calls.
 */
export class ShardPublisherClient extends ClientRMQ {
  private readonly channelLogger = new Logger(ShardPublisherClient.name);
  private ready = false;
  private closing = false;
  /** Ids of mandatory messages the broker returned: a return comes before the message's confirm. */
  private readonly returned = new Set<string>();

  constructor(
    options: Required<RmqOptions>['options'],
    private readonly topology: TopologyOptions,
  ) {
    super(options);
    this.on('disconnect', () => {
      this.ready = false;
    });
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
    try {
      await channel.publish(this.options.exchange ?? '', routingKey, content, {
        ...options,
        messageId,
        mandatory: true,
      });
      if (this.returned.has(messageId)) throw new UnroutableMessageError(routingKey);
    } finally {
      this.returned.delete(messageId);
    }
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

import { Logger } from '@nestjs/common';
import { ClientRMQ, type RmqOptions } from '@nestjs/microservices';
import type { Channel } from 'amqplib';
import { assertTopology, type TopologyOptions } from '@app/rabbitmq';

/**
 * Nest's RMQ client that declares the whole topology on every (re)connect before it publishes,
 * and knows whether it can publish right now.
 */
export class ShardPublisherClient extends ClientRMQ {
  private readonly channelLogger = new Logger(ShardPublisherClient.name);
  private ready = false;
  private closing = false;

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
    this.channel?.on('error', (error: Error) => {
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
   * Publishes one event and resolves on the broker's confirm. This is ClientRMQ's own path behind
   * emit() (its serializer, channel and send options) without emit()'s three Observables and
   * Subject per call, which cost more than the publish itself. Call it only while isReady(): unlike
   * emit(), it does not wait for a connection.
   */
  dispatchConfirmed(pattern: string, data: unknown): Promise<void> {
    return this.dispatchEvent({ pattern, data });
  }

  override async setupChannel(channel: Channel, resolve: () => void): Promise<void> {
    await assertTopology(channel, this.topology);
    await super.setupChannel(channel, resolve);
    this.ready = true;
  }
}

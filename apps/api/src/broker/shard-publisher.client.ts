import { ClientRMQ, type RmqOptions } from '@nestjs/microservices';
import type { Channel } from 'amqplib';
import { assertTopology, type TopologyOptions } from '@app/rabbitmq';

/**
 * Nest's RMQ client that declares the whole topology on every (re)connect before it publishes,
 * and knows whether it can publish right now.
 */
export class ShardPublisherClient extends ClientRMQ {
  private ready = false;

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

  override async setupChannel(channel: Channel, resolve: () => void): Promise<void> {
    await assertTopology(channel, this.topology);
    await super.setupChannel(channel, resolve);
    this.ready = true;
  }
}

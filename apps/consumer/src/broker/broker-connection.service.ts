import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { type ConfigType } from '@nestjs/config';
import {
  type AmqpConnectionManager,
  type ChannelWrapper,
  type CreateChannelOpts,
  connect,
} from 'amqp-connection-manager';
import { rabbitmqConfig } from '@app/config';
import type { Channel } from 'amqplib';
import { BrokerOutageLog, HEARTBEAT_SECONDS, RECONNECT_SECONDS, TopologyPerConnection, nodeOrder } from '@app/rabbitmq';
import { ConsumerMetrics } from '../metrics/consumer.metrics';

/**
 * The consumer's one connection to RabbitMQ; it reconnects by itself and every shard has a channel on
 * it. On a cluster it starts at a random node and moves to the next in turn when its node goes.
 */
@Injectable()
export class BrokerConnection implements OnModuleInit {
  private readonly logger = new Logger(BrokerConnection.name);
  private readonly outage: BrokerOutageLog;
  private readonly topology: TopologyPerConnection;
  private manager?: AmqpConnectionManager;
  private closing?: Promise<void>;

  constructor(
    @Inject(rabbitmqConfig.KEY) private readonly config: ConfigType<typeof rabbitmqConfig>,
    private readonly metrics: ConsumerMetrics,
  ) {
    this.outage = new BrokerOutageLog(this.logger, config.urls, 'holding the batches unacknowledged');
    this.topology = new TopologyPerConnection(config);
  }

  /** Starts connecting; not awaited, so the app runs (and /health says 503) while the broker is away. */
  onModuleInit(): void {
    const manager = connect(nodeOrder(this.config.urls), {
      heartbeatIntervalInSeconds: HEARTBEAT_SECONDS,
      reconnectTimeInSeconds: RECONNECT_SECONDS,
    });
    manager.on('connect', ({ url }) => {
      this.outage.restored(typeof url === 'string' ? url : undefined);
      this.metrics.broker.connected();
    });
    manager.on('disconnect', ({ err }) => {
      this.metrics.broker.disconnected();
      this.outage.lost(err);
    });
    manager.on('connectFailed', ({ err, url }) => this.outage.lost(err, typeof url === 'string' ? url : undefined));
    this.manager = manager;
  }

  /** Whether the connection is open right now. */
  isConnected(): boolean {
    return this.manager?.isConnected() ?? false;
  }

  /** A channel that amqp-connection-manager reopens, running `options.setup` again, after every reconnect. */
  createChannel(options: CreateChannelOpts): ChannelWrapper {
    if (this.manager === undefined) throw new Error('BrokerConnection used before module init');
    return this.manager.createChannel(options);
  }

  /** Resolves once the queues are declared on `channel`'s connection: once per connection, not per channel. */
  ensureTopology(channel: Channel): Promise<void> {
    return this.topology.ensure(channel);
  }

  /**
   * Whether `queue` exists, asked passively on a channel of its own: a missing queue makes the
   * broker close the channel (404), which must not touch the shards' channels.
   */
  async queueExists(queue: string): Promise<boolean> {
    const connection = this.manager?.connection;
    if (connection === undefined) throw new Error('not connected to RabbitMQ');
    const channel = await connection.createChannel();
    channel.on('error', () => undefined);
    try {
      await channel.checkQueue(queue);
      return true;
    } catch (error) {
      if ((error as { code?: number }).code === 404) return false;
      throw error;
    } finally {
      await channel.close().catch(() => undefined);
    }
  }

  /** Closes the connection; call after every channel is closed, or it can overtake their last acks. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.manager?.close() ?? Promise.resolve();
    return this.closing;
  }
}

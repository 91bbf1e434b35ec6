import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { type ConfigType } from '@nestjs/config';
import type { Options } from 'amqp-connection-manager';
import { apiConfig, rabbitmqConfig } from '@app/config';
import { IDEMPOTENCY_EXPIRES_HEADER, SHARDS_COUNT_HEADER, type WireEntry, encodeShardPackets } from '@app/contracts';
import { describeError } from '@app/observability';
import { BrokerOutageLog, HEARTBEAT_SECONDS, RECONNECT_SECONDS, SHARD_EXCHANGE, nodeOrder } from '@app/rabbitmq';
import { shardQueueName } from '@app/sharding';
import { ApiMetrics } from '../metrics/api.metrics';
import { ShardPublisherClient, isPublishTimeout } from './shard-publisher.client';

/** The broker did not take a message: it is unreachable, it refused, or it did not confirm in time. */
export class BrokerUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = BrokerUnavailableError.name;
  }
}

/** What fixes the messages of a request with an Idempotency-Key: their ids and when the key expires. */
export interface KeyedPublish {
  ids: { messageId(shard: number, part: number): string };
  /** ms since the epoch, sent as the x-idempotency-expires header. */
  expiresAt: number;
}

/**
 * Publishes shard messages through a Nest ClientProxy and resolves only on the broker's confirm.
 * On a cluster its one connection starts at a random node of RABBITMQ_URL and moves to the next in
 * turn when its node goes (nodeOrder, docs/cluster.md).
 */
@Injectable()
export class ShardPublisher implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(ShardPublisher.name);
  private readonly client: ShardPublisherClient;
  private readonly outage: BrokerOutageLog;
  /** Publishes awaiting their confirm; shutdown lets them settle before it closes the channel. */
  private readonly inFlight = new Set<Promise<unknown>>();
  /** When a publish last timed out, and when one was last confirmed (ms since the epoch). */
  private lastTimeoutAt = 0;
  private lastConfirmAt = 0;

  constructor(
    @Inject(rabbitmqConfig.KEY) private readonly rabbitmq: ConfigType<typeof rabbitmqConfig>,
    @Inject(apiConfig.KEY) private readonly api: ConfigType<typeof apiConfig>,
    private readonly metrics: ApiMetrics,
  ) {
    this.client = new ShardPublisherClient(
      {
        urls: nodeOrder(rabbitmq.urls),
        // The pattern is the routing key: the shard queue's name on a direct exchange.
        wildcards: true,
        exchange: SHARD_EXCHANGE,
        exchangeType: 'direct',
        persistent: true,
        socketOptions: {
          heartbeatIntervalInSeconds: HEARTBEAT_SECONDS,
          reconnectTimeInSeconds: RECONNECT_SECONDS,
        },
      },
      rabbitmq,
    );
    this.outage = new BrokerOutageLog(this.logger, rabbitmq.urls, 'answering 503');
    this.client.on('connect', (event?: { url?: unknown }) => {
      this.lastTimeoutAt = 0;
      this.outage.restored(typeof event?.url === 'string' ? event.url : undefined);
      metrics.broker.connected();
    });
    this.client.on('disconnect', (event?: { err?: unknown }) => {
      metrics.broker.disconnected();
      // A recycle after a nack closes the connection on purpose; the client logged why.
      if (!this.client.isRecycling()) this.outage.lost(event?.err);
    });
    this.client.onConnectFailed(({ err, url }) => this.outage.lost(err, typeof url === 'string' ? url : undefined));
  }

  onApplicationBootstrap(): void {
    // Not awaited: the api serves (503) while the broker is away and connects once it is back.
    this.client.connect().catch((error: unknown) => this.outage.lost(error));
  }

  /**
   * Lets every in-flight publish settle (each within PUBLISH_TIMEOUT_MS) before closing: closing
   * first would fail confirms that are on their way, and answer 503 for entries the broker holds.
   */
  async onApplicationShutdown(): Promise<void> {
    await Promise.allSettled(this.inFlight);
    await this.client.close();
  }

  /** Connected with the topology declared: publishes are attempted. */
  isReady(): boolean {
    return this.client.isReady();
  }

  /** Why RabbitMQ blocks publishing right now (a memory or disk alarm), or undefined. */
  blockedReason(): string | undefined {
    return this.client.blockedReason();
  }

  /**
   * Ready, and no publish timed out lately without a confirm since. A broker that stops answering
   * keeps the connection open until heartbeats give up (about 10 s); meanwhile publishes time
   * out, and health says so. The verdict fades after two publish timeouts without traffic, so an
   * instance that a load balancer stopped sending requests to can turn healthy again.
   */
  isHealthy(): boolean {
    const stalled =
      this.lastTimeoutAt > this.lastConfirmAt && Date.now() - this.lastTimeoutAt < 2 * this.api.publishTimeoutMs;
    return this.client.isReady() && !stalled;
  }

  /**
   * Publishes the entries of one shard, in order, as one message or several (at most
   * SHARD_MESSAGE_MAX_ENTRIES entries and SHARD_MESSAGE_MAX_BYTES each, so that the consumer's
   * PREFETCH bounds what it holds in entries), and resolves once the broker has confirmed every one
   * to disk; rejects with BrokerUnavailableError. A `keyed` request's messages get the ids its key
   * fixes and the x-idempotency-expires header; others get random ids and no such header.
   */
  async publish(shard: number, entries: WireEntry[], keyed?: KeyedPublish): Promise<void> {
    if (!this.client.isReady()) {
      throw new BrokerUnavailableError('RabbitMQ is not reachable; nothing was published');
    }
    const blocked = this.client.blockedReason();
    if (blocked !== undefined) {
      // Publishing now would only wait PUBLISH_TIMEOUT_MS, holding the body, for a 503 anyway.
      throw new BrokerUnavailableError(`RabbitMQ blocks publishing (${blocked}); nothing was published`);
    }
    const routingKey = shardQueueName(this.rabbitmq.queuePrefix, shard);
    const options = {
      persistent: true,
      contentType: 'application/json',
      headers:
        keyed === undefined
          ? { [SHARDS_COUNT_HEADER]: this.rabbitmq.shardsCount }
          : { [SHARDS_COUNT_HEADER]: this.rabbitmq.shardsCount, [IDEMPOTENCY_EXPIRES_HEADER]: keyed.expiresAt },
      // amqp-connection-manager's publish timeout: past it the publish rejects with "timeout" and
      // the message leaves its send queue, whether or not the broker was reached.
      timeout: this.api.publishTimeoutMs,
    };
    await Promise.all(
      encodeShardPackets(shard, entries).map((content, part) =>
        this.publishOne(shard, routingKey, content, options, keyed?.ids.messageId(shard, part)),
      ),
    );
  }

  private async publishOne(
    shard: number,
    routingKey: string,
    content: Buffer,
    options: Options.Publish,
    messageId: string | undefined,
  ) {
    const confirmed = this.client.dispatchConfirmed(routingKey, content, options, messageId);
    this.inFlight.add(confirmed);
    const timer = this.metrics.publishConfirmSeconds.startTimer();
    try {
      await confirmed;
      timer({ outcome: 'confirmed' });
      this.lastConfirmAt = Date.now();
    } catch (error) {
      timer({ outcome: 'failed' });
      if (isPublishTimeout(error)) this.lastTimeoutAt = Date.now();
      const message = `RabbitMQ did not confirm the entries of shard ${shard}: ${this.describe(error)}`;
      throw new BrokerUnavailableError(message, { cause: error });
    } finally {
      this.inFlight.delete(confirmed);
    }
  }

  private describe(error: unknown): string {
    if (isPublishTimeout(error)) {
      return `no confirm within ${this.api.publishTimeoutMs} ms`;
    }
    return describeError(error);
  }
}

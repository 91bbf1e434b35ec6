import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { type ConfigType } from '@nestjs/config';
import { rabbitmqConfig } from '@app/config';
import { describeError } from '@app/observability';
import { shardQueueName } from '@app/sharding';
import { BrokerConnection } from '../broker/broker-connection.service';

/** How often the broker is asked for shard queues beyond SHARDS_COUNT. */
export const EXTRA_QUEUES_CHECK_MS = 5_000;
/** Never look further than this many queues past our count. */
const MAX_EXTRA_QUEUES = 256;

/**
 * An api with more shards than this consumer publishes to queues `<prefix>.shard.<n>` with
 * n >= SHARDS_COUNT, which nobody consumes. This watch finds them (a passive check on a throwaway
 * channel, every EXTRA_QUEUES_CHECK_MS), logs them as an error and makes /health 503.
 */
@Injectable()
export class ExtraShardQueuesWatch implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(ExtraShardQueuesWatch.name);
  private found: string[] = [];
  private timer?: NodeJS.Timeout;
  private checking = false;

  constructor(
    @Inject(rabbitmqConfig.KEY) private readonly rabbitmq: ConfigType<typeof rabbitmqConfig>,
    private readonly connection: BrokerConnection,
  ) {}

  /** Shard queues beyond SHARDS_COUNT found by the last check; [] when the counts agree. */
  unconsumedQueues(): string[] {
    return this.found;
  }

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => void this.check(), EXTRA_QUEUES_CHECK_MS);
    this.timer.unref();
    void this.check();
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  /** Looks for `<prefix>.shard.<SHARDS_COUNT>`, then the next ones, until one is missing. */
  async check(): Promise<void> {
    if (this.checking || !this.connection.isConnected()) return;
    this.checking = true;
    try {
      const { queuePrefix, shardsCount } = this.rabbitmq;
      const found: string[] = [];
      for (let shard = shardsCount; shard < shardsCount + MAX_EXTRA_QUEUES; shard++) {
        const queue = shardQueueName(queuePrefix, shard);
        if (!(await this.connection.queueExists(queue))) break;
        found.push(queue);
      }
      if (found.length > 0 && found.join() !== this.found.join()) {
        this.logger.error(
          `SHARDS_COUNT disagreement: shard queues ${found.join(', ')} exist but this consumer has ` +
            `SHARDS_COUNT=${shardsCount}, so nobody consumes them: does the api run with more shards?`,
        );
      } else if (found.length === 0 && this.found.length > 0) {
        this.logger.log(`no shard queue beyond SHARDS_COUNT=${shardsCount} is left`);
      }
      this.found = found;
    } catch (error) {
      this.logger.warn(`could not look for shard queues beyond SHARDS_COUNT: ${describeError(error)}`);
    } finally {
      this.checking = false;
    }
  }
}

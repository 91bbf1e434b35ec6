import { Injectable } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { BrokerConnection } from '../broker/broker-connection.service';
import { FileSinkService } from '../file-sink/file-sink.service';
import { ExtraShardQueuesWatch } from '../shard/extra-shard-queues.watch';
import { ShardSupervisor } from '../shard/shard-supervisor.service';

/** Health of what the consumer depends on: its broker connection, its shards' consumers and the output folder. */
@Injectable()
export class ConsumerHealthIndicators {
  constructor(
    private readonly health: HealthIndicatorService,
    private readonly connection: BrokerConnection,
    private readonly sink: FileSinkService,
    private readonly supervisor: ShardSupervisor,
    private readonly extraQueues: ExtraShardQueuesWatch,
  ) {}

  broker() {
    const indicator = this.health.check('rabbitmq');
    return this.connection.isConnected() ? indicator.up() : indicator.down({ message: 'not connected to RabbitMQ' });
  }

  /**
   * Which shards have a consumer right now; down, naming the cause, when a shard has had none for
   * over 5 s, or the apps disagree on SHARDS_COUNT (in either direction).
   */
  shards() {
    const indicator = this.health.check('shards');
    const { consuming, notConsuming } = this.supervisor.consumingShards();
    const unconsumedQueues = this.extraQueues.unconsumedQueues();
    const problems = this.supervisor.shardProblems();
    if (unconsumedQueues.length > 0) {
      problems.push(`SHARDS_COUNT disagreement: nobody consumes ${unconsumedQueues.join(', ')}`);
    }
    return problems.length === 0
      ? indicator.up({ consuming, notConsuming })
      : indicator.down({ consuming, notConsuming, unconsumedQueues, message: problems.join('; ') });
  }

  async outputFolder() {
    const indicator = this.health.check('output');
    return (await this.sink.isWritable())
      ? indicator.up({ path: this.sink.directory })
      : indicator.down({ path: this.sink.directory, message: 'the output folder is not writable' });
  }
}

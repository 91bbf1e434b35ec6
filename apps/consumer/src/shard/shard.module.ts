import { Module } from '@nestjs/common';
import { type ConfigType } from '@nestjs/config';
import { consumerConfig, rabbitmqConfig } from '@app/config';
import type { BatchBufferOptions } from '../batch/batch-buffer';
import { BATCH_OPTIONS, BatchModule } from '../batch/batch.module';
import { BrokerConnection } from '../broker/broker-connection.service';
import { BrokerModule } from '../broker/broker.module';
import { FileSinkModule } from '../file-sink/file-sink.module';
import { FileSinkService } from '../file-sink/file-sink.service';
import { ConsumerMetrics } from '../metrics/consumer.metrics';
import { ConsumerMetricsModule } from '../metrics/consumer-metrics.module';
import { ExtraShardQueuesWatch } from './extra-shard-queues.watch';
import { ShardRuntime } from './shard-runtime';
import { SHARD_RUNTIME_FACTORY, ShardSupervisor, type ShardRuntimeFactory } from './shard-supervisor.service';

/**
 * One ShardRuntime per shard of CONSUMER_SHARDS, each with its own channel and worker pool (and
 * the pool's batch buffer), all writing through the one file sink; the supervisor starts and stops them.
 */
@Module({
  imports: [BrokerModule, FileSinkModule, ConsumerMetricsModule, BatchModule],
  providers: [
    {
      provide: SHARD_RUNTIME_FACTORY,
      useFactory:
        (
          rabbitmq: ConfigType<typeof rabbitmqConfig>,
          consumer: ConfigType<typeof consumerConfig>,
          batch: BatchBufferOptions,
          connection: BrokerConnection,
          sink: FileSinkService,
          metrics: ConsumerMetrics,
        ): ShardRuntimeFactory =>
        (shard) =>
          new ShardRuntime(shard, { rabbitmq, consumer, batch, connection, sink, metrics }),
      inject: [
        rabbitmqConfig.KEY,
        consumerConfig.KEY,
        BATCH_OPTIONS,
        BrokerConnection,
        FileSinkService,
        ConsumerMetrics,
      ],
    },
    ShardSupervisor,
    ExtraShardQueuesWatch,
  ],
  exports: [ShardSupervisor, ExtraShardQueuesWatch],
})
export class ShardModule {}

import { Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { consumerConfig, rabbitmqConfig, runtimeConfig } from '@app/config';
import { HealthModule } from './health/health.module';
import { ConsumerMetricsModule } from './metrics/consumer-metrics.module';
import { ShardModule } from './shard/shard.module';
import { WorkersModule } from './workers/workers.module';

@Module({
  imports: [
    ConfigModule.forRoot({
      isGlobal: true,
      ignoreEnvFile: true,
      load: [rabbitmqConfig, consumerConfig, runtimeConfig],
    }),
    ConsumerMetricsModule,
    ShardModule,
    WorkersModule,
    HealthModule,
  ],
})
export class ConsumerModule {}

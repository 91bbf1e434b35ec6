import { type DynamicModule, Module } from '@nestjs/common';
import { AppConfigModule, type ConsumerAppConfig } from '@app/config';
import { HealthModule } from './health/health.module';
import { ConsumerMetricsModule } from './metrics/consumer-metrics.module';
import { ShardModule } from './shard/shard.module';
import { WorkersModule } from './workers/workers.module';

@Module({
  imports: [ConsumerMetricsModule, ShardModule, WorkersModule, HealthModule],
})
export class ConsumerModule {
  /** The consumer, with the configuration main.ts read and validated before Nest started. */
  static forRoot(config: ConsumerAppConfig): DynamicModule {
    return { module: ConsumerModule, imports: [AppConfigModule.forRoot(config)] };
  }
}

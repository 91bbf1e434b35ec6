import { Module } from '@nestjs/common';
import { ApiMetricsModule } from '../metrics/api-metrics.module';
import { ShardPublisher } from './shard-publisher.service';

@Module({
  imports: [ApiMetricsModule],
  providers: [ShardPublisher],
  exports: [ShardPublisher],
})
export class BrokerModule {}

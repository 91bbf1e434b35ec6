import { Module } from '@nestjs/common';
import { BrokerModule } from '../broker/broker.module';
import { FileSinkModule } from '../file-sink/file-sink.module';
import { ConsumerMetricsModule } from '../metrics/consumer-metrics.module';
import { ShardSupervisor } from './shard-supervisor.service';

@Module({
  imports: [BrokerModule, FileSinkModule, ConsumerMetricsModule],
  providers: [ShardSupervisor],
  exports: [ShardSupervisor],
})
export class ShardModule {}

import { Module } from '@nestjs/common';
import { ConsumerMetricsModule } from '../metrics/consumer-metrics.module';
import { BrokerConnection } from './broker-connection.service';

@Module({
  imports: [ConsumerMetricsModule],
  providers: [BrokerConnection],
  exports: [BrokerConnection],
})
export class BrokerModule {}

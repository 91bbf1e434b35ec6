import { Module } from '@nestjs/common';
import { MetricsModule } from '@app/observability';
import { ConsumerMetrics } from './consumer.metrics';

@Module({
  imports: [MetricsModule.forApp('consumer')],
  providers: [ConsumerMetrics],
  exports: [ConsumerMetrics],
})
export class ConsumerMetricsModule {}

import { Module } from '@nestjs/common';
import { MetricsModule } from '@app/observability';
import { ApiMetrics } from './api.metrics';

@Module({
  imports: [MetricsModule.forApp('api')],
  providers: [ApiMetrics],
  exports: [ApiMetrics],
})
export class ApiMetricsModule {}

import { type DynamicModule, Module } from '@nestjs/common';
import { type ApiAppConfig, AppConfigModule } from '@app/config';
import { HealthModule } from './health/health.module';
import { MessageModule } from './message/message.module';
import { ApiMetricsModule } from './metrics/api-metrics.module';

@Module({
  imports: [ApiMetricsModule, MessageModule, HealthModule],
})
export class AppModule {
  /** The api, with the configuration main.ts read and validated before Nest started. */
  static forRoot(config: ApiAppConfig): DynamicModule {
    return { module: AppModule, imports: [AppConfigModule.forRoot(config)] };
  }
}

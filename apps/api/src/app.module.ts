import { type DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { type ApiAppConfig, AppConfigModule } from '@app/config';
import { HealthModule } from './health/health.module';
import { MessageModule } from './message/message.module';
import { ApiMetricsModule } from './metrics/api-metrics.module';
import { ShutdownModule } from './shutdown/shutdown.module';
import { ServiceUnavailableFilter } from './service-unavailable.filter';

@Module({
  imports: [ApiMetricsModule, ShutdownModule, MessageModule, HealthModule],
  // Every 503 for a broker that cannot take the entries, or a key store that does not answer, with Retry-After.
  providers: [{ provide: APP_FILTER, useClass: ServiceUnavailableFilter }],
})
export class AppModule {
  /** The api, with the configuration main.ts read and validated before Nest started. */
  static forRoot(config: ApiAppConfig): DynamicModule {
    return { module: AppModule, imports: [AppConfigModule.forRoot(config)] };
  }
}

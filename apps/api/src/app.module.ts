import { Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { APP_FILTER } from '@nestjs/core';
import { apiConfig, rabbitmqConfig, runtimeConfig } from '@app/config';
import { BrokerUnavailableFilter } from './broker/broker-unavailable.filter';
import { HealthModule } from './health/health.module';
import { MessageModule } from './message/message.module';
import { ApiMetricsModule } from './metrics/api-metrics.module';
import { ShutdownModule } from './shutdown/shutdown.module';

@Module({
  imports: [
    ConfigModule.forRoot({ isGlobal: true, ignoreEnvFile: true, load: [rabbitmqConfig, apiConfig, runtimeConfig] }),
    ApiMetricsModule,
    ShutdownModule,
    MessageModule,
    HealthModule,
  ],
  // Every 503 for a broker that cannot take the entries, with Retry-After.
  providers: [{ provide: APP_FILTER, useClass: BrokerUnavailableFilter }],
})
export class AppModule {}

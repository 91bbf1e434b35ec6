import { Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { apiConfig, rabbitmqConfig, runtimeConfig } from '@app/config';
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
})
export class AppModule {}

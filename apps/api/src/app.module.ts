import { Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { apiConfig, rabbitmqConfig, runtimeConfig } from '@app/config';
import { HealthModule } from './health/health.module';
import { MessageModule } from './message/message.module';

@Module({
  imports: [
    ConfigModule.forRoot({ isGlobal: true, ignoreEnvFile: true, load: [rabbitmqConfig, apiConfig, runtimeConfig] }),
    MessageModule,
    HealthModule,
  ],
})
export class AppModule {}

import { Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { consumerConfig, rabbitmqConfig, runtimeConfig } from '@app/config';

@Module({
  imports: [
    ConfigModule.forRoot({ isGlobal: true, ignoreEnvFile: true, load: [rabbitmqConfig, consumerConfig, runtimeConfig] }),
  ],
})
export class ConsumerModule {}

import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { BrokerModule } from '../broker/broker.module';
import { FileSinkModule } from '../file-sink/file-sink.module';
import { ConsumerHealthIndicators } from './consumer.health';
import { HealthController } from './health.controller';

@Module({
  imports: [TerminusModule.forRoot({ logger: false }), BrokerModule, FileSinkModule],
  controllers: [HealthController],
  providers: [ConsumerHealthIndicators],
})
export class HealthModule {}

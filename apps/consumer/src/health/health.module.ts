import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { BrokerModule } from '../broker/broker.module';
import { FileSinkModule } from '../file-sink/file-sink.module';
import { ShardModule } from '../shard/shard.module';
import { ConsumerHealthIndicators } from './consumer.health';
import { HealthController } from './health.controller';

@Module({
  imports: [TerminusModule.forRoot({ logger: false }), BrokerModule, FileSinkModule, ShardModule],
  controllers: [HealthController],
  providers: [ConsumerHealthIndicators],
})
export class HealthModule {}

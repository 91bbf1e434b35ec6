import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { BrokerModule } from '../broker/broker.module';
import { ShutdownModule } from '../shutdown/shutdown.module';
import { BrokerHealthIndicator } from './broker.health';
import { HealthController } from './health.controller';

@Module({
  imports: [TerminusModule.forRoot({ logger: false }), BrokerModule, ShutdownModule],
  controllers: [HealthController],
  providers: [BrokerHealthIndicator],
})
export class HealthModule {}

import { Module } from '@nestjs/common';
import { BrokerConnection } from './broker-connection.service';

@Module({
  providers: [BrokerConnection],
  exports: [BrokerConnection],
})
export class BrokerModule {}

import { Module } from '@nestjs/common';
import { ShardPublisher } from './shard-publisher.service';

@Module({
  providers: [ShardPublisher],
  exports: [ShardPublisher],
})
export class BrokerModule {}

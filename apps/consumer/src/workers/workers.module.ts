import { Module } from '@nestjs/common';
import { ShardModule } from '../shard/shard.module';
import { WorkersController } from './workers.controller';

@Module({
  imports: [ShardModule],
  controllers: [WorkersController],
})
export class WorkersModule {}

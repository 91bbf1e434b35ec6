import { Controller, Get } from '@nestjs/common';
import type { WorkersResponse } from '@app/contracts';
import { ShardSupervisor } from '../shard/shard-supervisor.service';

@Controller('workers')
export class WorkersController {
  constructor(private readonly supervisor: ShardSupervisor) {}

  @Get()
  list(): WorkersResponse {
    return {
      shards: this.supervisor.workerHistory(),
    };
  }
}

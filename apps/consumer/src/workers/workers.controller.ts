import { Controller, Get } from '@nestjs/common';
import { ShardSupervisor } from '../shard/shard-supervisor.service';
import type { WorkerRecord } from '../worker-pool/worker-pool.types';

export interface WorkersResponse {
  shards: Array<{ shard: number; workers: WorkerRecord[] }>;
}

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

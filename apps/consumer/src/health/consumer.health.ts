import { Injectable } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { BrokerConnection } from '../broker/broker-connection.service';
import { FileSinkService } from '../file-sink/file-sink.service';
import { ShardSupervisor } from '../shard/shard-supervisor.service';

/** Health of what the consumer depends on: its own broker connection and the output folder. */
@Injectable()
export class ConsumerHealthIndicators {
  constructor(
    private readonly health: HealthIndicatorService,
    private readonly connection: BrokerConnection,
    private readonly sink: FileSinkService,
    private readonly supervisor: ShardSupervisor,
  ) {}

  broker() {
    const indicator = this.health.check('rabbitmq');
    return this.connection.isConnected() ? indicator.up() : indicator.down({ message: 'not connected to RabbitMQ' });
  }

  /**
   * Which shards have a consumer right now. Reported, not judged: the contract's /health is 200
   * whenever the broker connection is up and the folder writable.
   */
  shards() {
    return this.health.check('shards').up(this.supervisor.consumingShards());
  }

  async outputFolder() {
    const indicator = this.health.check('output');
    return (await this.sink.isWritable())
      ? indicator.up({ path: this.sink.directory })
      : indicator.down({ path: this.sink.directory, message: 'the output folder is not writable' });
  }
}

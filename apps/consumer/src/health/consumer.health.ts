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

  /** Down while any shard of this process has no consumer, e.g. its channel keeps failing. */
  shards() {
    const indicator = this.health.check('shards');
    const idle = this.supervisor.runtimes.filter((runtime) => !runtime.isConsuming()).map((runtime) => runtime.shard);
    return idle.length === 0 ? indicator.up() : indicator.down({ notConsuming: idle });
  }

  async outputFolder() {
    const indicator = this.health.check('output');
    return (await this.sink.isWritable())
      ? indicator.up({ path: this.sink.directory })
      : indicator.down({ path: this.sink.directory, message: 'the output folder is not writable' });
  }
}

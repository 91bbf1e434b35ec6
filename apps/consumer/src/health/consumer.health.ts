import { Injectable } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { BrokerConnection } from '../broker/broker-connection.service';
import { FileSinkService } from '../file-sink/file-sink.service';

/** Health of what the consumer depends on: its own broker connection and the output folder. */
@Injectable()
export class ConsumerHealthIndicators {
  constructor(
    private readonly health: HealthIndicatorService,
    private readonly connection: BrokerConnection,
    private readonly sink: FileSinkService,
  ) {}

  broker() {
    const indicator = this.health.check('rabbitmq');
    return this.connection.isConnected() ? indicator.up() : indicator.down({ message: 'not connected to RabbitMQ' });
  }

  async outputFolder() {
    const indicator = this.health.check('output');
    return (await this.sink.isWritable())
      ? indicator.up({ path: this.sink.directory })
      : indicator.down({ path: this.sink.directory, message: 'the output folder is not writable' });
  }
}

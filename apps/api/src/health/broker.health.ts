import { Injectable } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { ShardPublisher } from '../broker/shard-publisher.service';

/** Up when the app's own broker connection is open and the topology declared; opens nothing itself. */
@Injectable()
export class BrokerHealthIndicator {
  constructor(
    private readonly health: HealthIndicatorService,
    private readonly publisher: ShardPublisher,
  ) {}

  check(key = 'rabbitmq') {
    const indicator = this.health.check(key);
    return this.publisher.isReady() ? indicator.up() : indicator.down({ message: 'not connected to RabbitMQ' });
  }
}

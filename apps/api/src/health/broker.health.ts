import { Injectable } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { ShardPublisher } from '../broker/shard-publisher.service';
import { ShutdownGate } from '../shutdown/shutdown-gate.service';

/**
 * Up when the app's own broker connection is open, the topology declared, publishes are not blocked
 * by a broker alarm and are being confirmed, and the api is not shutting down; opens nothing itself.
 */
@Injectable()
export class BrokerHealthIndicator {
  constructor(
    private readonly health: HealthIndicatorService,
    private readonly publisher: ShardPublisher,
    private readonly shutdown: ShutdownGate,
  ) {}

  check(key = 'rabbitmq') {
    const indicator = this.health.check(key);
    if (this.shutdown.shuttingDown) return indicator.down({ message: 'the api is shutting down' });
    if (!this.publisher.isReady()) return indicator.down({ message: 'not connected to RabbitMQ' });
    const blocked = this.publisher.blockedReason();
    if (blocked !== undefined) return indicator.down({ message: `RabbitMQ blocks publishing (${blocked})` });
    if (!this.publisher.isHealthy()) return indicator.down({ message: 'RabbitMQ does not confirm publishes in time' });
    return indicator.up();
  }
}

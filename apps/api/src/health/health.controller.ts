import { Controller, Get } from '@nestjs/common';
import { ApiOperation } from '@nestjs/swagger';
import { HealthCheck, HealthCheckService } from '@nestjs/terminus';
import { BrokerHealthIndicator } from './broker.health';

@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly broker: BrokerHealthIndicator,
  ) {}

  @Get()
  @ApiOperation({
    summary: 'Whether the api can take entries',
    description:
      '200 when connected to RabbitMQ with the topology declared and publishes confirmed in time; 503 (same shape, ' +
      'the failing part named) when not, and while the api is shutting down.',
  })
  @HealthCheck()
  check() {
    return this.health.check([() => this.broker.check()]);
  }
}

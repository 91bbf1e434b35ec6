import { Controller, Get } from '@nestjs/common';
import { HealthCheck, HealthCheckService } from '@nestjs/terminus';
import { ConsumerHealthIndicators } from './consumer.health';

@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: ConsumerHealthIndicators,
  ) {}

  @Get()
  @HealthCheck()
  check() {
    return this.health.check([
      () => this.indicators.broker(),
      () => this.indicators.shards(),
      () => this.indicators.outputFolder(),
    ]);
  }
}

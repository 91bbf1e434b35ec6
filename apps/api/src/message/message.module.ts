import { Inject, type MiddlewareConsumer, Module, type NestModule, RequestMethod } from '@nestjs/common';
import { type ConfigType } from '@nestjs/config';
import { apiConfig } from '@app/config';
import { BrokerModule } from '../broker/broker.module';
import { IdempotencyModule } from '../idempotency/idempotency.module';
import { ApiMetricsModule } from '../metrics/api-metrics.module';
import { BearerAuthMiddleware } from './bearer-auth.middleware';
import { MessageController } from './message.controller';
import { IngestService } from './ingest.service';

@Module({
  imports: [BrokerModule, ApiMetricsModule, IdempotencyModule],
  controllers: [MessageController],
  providers: [IngestService],
})
export class MessageModule implements NestModule {
  constructor(@Inject(apiConfig.KEY) private readonly api: ConfigType<typeof apiConfig>) {}

  configure(consumer: MiddlewareConsumer): void {
    // Without API_TOKEN there is nothing to check, so no middleware on every request's path.
    if (this.api.token === undefined) return;
    consumer.apply(BearerAuthMiddleware).forRoutes({ path: 'message', method: RequestMethod.POST });
  }
}

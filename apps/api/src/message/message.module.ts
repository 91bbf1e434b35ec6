import { type MiddlewareConsumer, Module, type NestModule, RequestMethod } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { BrokerModule } from '../broker/broker.module';
import { BearerAuthMiddleware } from './bearer-auth.middleware';
import { BrokerUnavailableFilter } from './broker-unavailable.filter';
import { MessageController } from './message.controller';
import { ShardingService } from './sharding.service';

@Module({
  imports: [BrokerModule],
  controllers: [MessageController],
  providers: [ShardingService, { provide: APP_FILTER, useClass: BrokerUnavailableFilter }],
})
export class MessageModule implements NestModule {
  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(BearerAuthMiddleware).forRoutes({ path: 'message', method: RequestMethod.POST });
  }
}

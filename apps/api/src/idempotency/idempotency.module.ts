import { Module } from '@nestjs/common';
import { type ConfigType } from '@nestjs/config';
import { apiConfig, rabbitmqConfig } from '@app/config';
import { IDEMPOTENCY_STORE, type IdempotencyStore } from './idempotency.store';
import { IdempotencyService } from './idempotency.service';
import { MemoryIdempotencyStore } from './memory-idempotency.store';
import { RedisIdempotencyStore } from './redis-idempotency.store';

/** Redis when REDIS_URL is set (every replica sees the same keys), else this process's memory. */
function createStore(api: ConfigType<typeof apiConfig>, rabbitmq: ConfigType<typeof rabbitmqConfig>): IdempotencyStore {
  // Keys live beside the queues they fill: apps with another QUEUE_PREFIX share nothing.
  if (api.redisUrl !== undefined)
    return new RedisIdempotencyStore(api.redisUrl, `${rabbitmq.queuePrefix}:idempotency:`);
  return new MemoryIdempotencyStore();
}

@Module({
  providers: [
    { provide: IDEMPOTENCY_STORE, useFactory: createStore, inject: [apiConfig.KEY, rabbitmqConfig.KEY] },
    IdempotencyService,
  ],
  exports: [IdempotencyService],
})
export class IdempotencyModule {}

import { Module } from '@nestjs/common';
import { type ConfigType } from '@nestjs/config';
import { consumerConfig } from '@app/config';
import type { BatchBufferOptions } from './batch-buffer';

/** The batch shape every shard's buffer uses: BATCH_SIZE entries, or fewer after BATCH_FLUSH_MS. */
export const BATCH_OPTIONS = Symbol('BATCH_OPTIONS');

@Module({
  providers: [
    {
      provide: BATCH_OPTIONS,
      useFactory: (consumer: ConfigType<typeof consumerConfig>): BatchBufferOptions => ({
        size: consumer.batchSize,
        flushMs: consumer.batchFlushMs,
      }),
      inject: [consumerConfig.KEY],
    },
  ],
  exports: [BATCH_OPTIONS],
})
export class BatchModule {}

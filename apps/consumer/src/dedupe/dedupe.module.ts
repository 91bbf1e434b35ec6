import { Module } from '@nestjs/common';
import { Dedupe } from './dedupe';
import { DedupeService } from './dedupe.service';

/**
 * Exactly once on the consumer: the ledger of written batches and the lookups of repeated entries.
 * Provided under the abstract `Dedupe`, which a benchmark entry point overrides (DisabledDedupe).
 */
@Module({
  providers: [{ provide: Dedupe, useClass: DedupeService }],
  exports: [Dedupe],
})
export class DedupeModule {}

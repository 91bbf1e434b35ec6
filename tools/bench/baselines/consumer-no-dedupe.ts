/**
 * The consumer with its dedupe disabled, for the drain benchmark only: the built consumer's own
 * module with one provider overridden (Dedupe -> DisabledDedupe: no ledger lines, no lookups),
 * so that `npm run bench -- --only drain --dedupe-off` can measure what exactly-once costs
 * (docs/exactly-once.md). There is no production switch for this; only this entry point makes it.
 */
import { Test } from '@nestjs/testing';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { readConsumerAppConfig } from '@app/config';
import { exitOnBootError, logReady } from '@app/lifecycle';
import { createLogger } from '@app/observability';
import { ConsumerModule } from '../../../apps/consumer/src/consumer.module';
import { Dedupe } from '../../../apps/consumer/src/dedupe/dedupe';
import { DisabledDedupe } from '../../../apps/consumer/src/dedupe/disabled-dedupe';

async function bootstrap(): Promise<void> {
  const config = readConsumerAppConfig();
  const moduleRef = await Test.createTestingModule({ imports: [ConsumerModule.forRoot(config)] })
    .overrideProvider(Dedupe)
    .useClass(DisabledDedupe)
    .compile();
  const app = moduleRef.createNestApplication<NestFastifyApplication>(new FastifyAdapter(), {
    logger: createLogger(config.runtime, 'consumer'),
  });
  app.enableShutdownHooks(['SIGTERM', 'SIGINT'], { useProcessExit: true });
  await app.listen(config.consumer.port, config.consumer.host);
  await logReady(app, 'the consumer with its dedupe disabled (benchmark only)');
}

bootstrap().catch(exitOnBootError('consumer'));

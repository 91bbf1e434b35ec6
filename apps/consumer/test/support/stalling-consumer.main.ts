/**
 * The consumer with a file sink that stalls every Nth batch write until its worker times out, for
 * the sink-stall tests only: `node -r ts-node/register/transpile-only -r tsconfig-paths/register
 * apps/consumer/test/support/stalling-consumer.main.ts <N>` (the test kit's
 * `pipeline.startConsumer(env, { entry: STALLING_CONSUMER })` runs it). Product code has no seam for
 * this: the test module swaps the sink provider, everything else is the real consumer.
 */
import { resolve } from 'node:path';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { type ConsumerConfig, consumerConfig, readConsumerAppConfig } from '@app/config';
import { exitIfShutdownHangs, exitOnBootError, logReady, readConfigOrExit } from '@app/lifecycle';
import { createLogger } from '@app/observability';
import { ConsumerModule } from '../../src/consumer.module';
import { FileSinkService } from '../../src/file-sink/file-sink.service';
import { StallingFileSink } from './stalling-sink';

async function bootstrap(): Promise<void> {
  const every = Number(process.argv[2]);
  if (!Number.isInteger(every) || every < 1)
    throw new RangeError(`stall every: expected a whole number >= 1, got ${process.argv[2]}`);
  const config = readConfigOrExit('consumer', () => readConsumerAppConfig());
  const logger = createLogger(config.runtime, 'consumer');
  const moduleRef = await Test.createTestingModule({ imports: [ConsumerModule.forRoot(config)] })
    .setLogger(logger)
    .overrideProvider(FileSinkService)
    .useFactory({
      factory: (sinkConfig: ConsumerConfig) => new StallingFileSink(sinkConfig, every),
      inject: [consumerConfig.KEY],
    })
    .compile();
  const app = moduleRef.createNestApplication<NestFastifyApplication>(new FastifyAdapter(), { logger });
  app.enableShutdownHooks(['SIGTERM', 'SIGINT'], { useProcessExit: true });
  exitIfShutdownHangs('consumer', config.runtime.shutdownTimeoutMs);
  await app.listen(config.consumer.port, config.consumer.host);
  await logReady(
    app,
    `/health, /workers, /metrics; batch files in ${resolve(config.consumer.dataOutputDir)} (stalling every ${every}th write)`,
  );
}

bootstrap().catch(exitOnBootError('consumer'));

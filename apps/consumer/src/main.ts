import { resolve } from 'node:path';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { readConsumerAppConfig } from '@app/config';
import { exitIfShutdownHangs, exitOnBootError, logReady, readConfigOrExit } from '@app/lifecycle';
import { createLogger } from '@app/observability';
import { ConsumerModule } from './consumer.module';

async function bootstrap(): Promise<void> {
  // Every variable the consumer reads, read once here, so that any bad one stops it with one line.
  const config = readConfigOrExit('consumer', () => readConsumerAppConfig());
  const app = await NestFactory.create<NestFastifyApplication>(ConsumerModule.forRoot(config), new FastifyAdapter(), {
    logger: createLogger(config.runtime, 'consumer'),
  });
  app.enableShutdownHooks(['SIGTERM', 'SIGINT'], { useProcessExit: true });
  exitIfShutdownHangs('consumer', config.runtime.shutdownTimeoutMs);
  await app.listen(config.consumer.port, config.consumer.host);
  await logReady(app, `/health, /workers, /metrics; batch files in ${resolve(config.consumer.dataOutputDir)}`);
}

bootstrap().catch(exitOnBootError('consumer'));

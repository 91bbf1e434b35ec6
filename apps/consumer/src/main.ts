import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import {
  exitIfShutdownHangs,
  exitOnBootError,
  readConfigOrExit,
  readConsumerConfig,
  readRuntimeConfig,
} from '@app/config';
import { createLogger } from '@app/observability';
import { ConsumerModule } from './consumer.module';

async function bootstrap(): Promise<void> {
  const { consumer, runtime } = readConfigOrExit('consumer', () => ({
    consumer: readConsumerConfig(),
    runtime: readRuntimeConfig(),
  }));
  const app = await NestFactory.create<NestFastifyApplication>(ConsumerModule, new FastifyAdapter(), {
    logger: createLogger(runtime, 'consumer'),
  });
  app.enableShutdownHooks(['SIGTERM', 'SIGINT'], { useProcessExit: true });
  exitIfShutdownHangs('consumer', runtime.shutdownTimeoutMs);
  await app.listen(consumer.port, consumer.host);
}

bootstrap().catch(exitOnBootError('consumer'));

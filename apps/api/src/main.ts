import {
  exitIfShutdownHangs,
  exitOnBootError,
  readApiConfig,
  readConfigOrExit,
  readRabbitmqConfig,
  readRuntimeConfig,
} from '@app/config';
import { createApiApp } from './api.app';

async function bootstrap(): Promise<void> {
  // Every variable the api reads, so that any bad one stops it here with one line.
  const { api, runtime } = readConfigOrExit('api', () => ({
    rabbitmq: readRabbitmqConfig(),
    api: readApiConfig(),
    runtime: readRuntimeConfig(),
  }));
  const app = await createApiApp(api, runtime);
  app.enableShutdownHooks(['SIGTERM', 'SIGINT'], { useProcessExit: true });
  exitIfShutdownHangs('api', runtime.shutdownTimeoutMs);
  await app.listen(api.port, api.host);
}

bootstrap().catch(exitOnBootError('api'));

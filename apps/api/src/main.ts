import { readApiAppConfig } from '@app/config';
import { exitIfShutdownHangs, exitOnBootError, logReady, readConfigOrExit } from '@app/lifecycle';
import { createApiApp } from './api.app';

async function bootstrap(): Promise<void> {
  // Every variable the api reads, read once here, so that any bad one stops it with one line.
  const config = readConfigOrExit('api', () => readApiAppConfig());
  const app = await createApiApp(config);
  app.enableShutdownHooks(['SIGTERM', 'SIGINT'], { useProcessExit: true });
  exitIfShutdownHangs('api', config.runtime.shutdownTimeoutMs);
  await app.listen(config.api.port, config.api.host);
  await logReady(app, 'POST /message, /docs, /health, /metrics');
}

bootstrap().catch(exitOnBootError('api'));

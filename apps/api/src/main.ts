import { exitIfShutdownHangs, exitOnBootError, readApiConfig, readConfigOrExit, readRuntimeConfig } from '@app/config';
import { createApiApp } from './api.app';

async function bootstrap(): Promise<void> {
  const { api, runtime } = readConfigOrExit('api', () => ({ api: readApiConfig(), runtime: readRuntimeConfig() }));
  const app = await createApiApp(api, runtime);
  app.enableShutdownHooks(['SIGTERM', 'SIGINT'], { useProcessExit: true });
  exitIfShutdownHangs('api', runtime.shutdownTimeoutMs);
  await app.listen(api.port, api.host);
}

bootstrap().catch(exitOnBootError('api'));

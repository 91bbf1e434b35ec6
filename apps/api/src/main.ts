import { exitOnBootError, readApiConfig, readConfigOrExit, readRuntimeConfig } from '@app/config';
import { createApiApp } from './api.app';

async function bootstrap(): Promise<void> {
  const { api, runtime } = readConfigOrExit('api', () => ({ api: readApiConfig(), runtime: readRuntimeConfig() }));
  const app = await createApiApp(api, runtime);
  app.enableShutdownHooks(['SIGTERM', 'SIGINT'], { useProcessExit: true });
  await app.listen(api.port, api.host);
}

bootstrap().catch(exitOnBootError('api'));

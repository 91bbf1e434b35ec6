import { ValidationPipe } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { ApiAppConfig } from '@app/config';
import { createLogger } from '@app/observability';
import { AppModule } from './app.module';
import { serveOpenApi } from './docs/openapi';

/**
 * Builds the api exactly as `main.ts` runs it (tests use it too): Fastify with the body limit,
 * JSON as the only accepted body, and the OpenAPI description at /docs.
 */
export async function createApiApp(config: ApiAppConfig): Promise<NestFastifyApplication> {
  const { api, runtime } = config;
  const adapter = new FastifyAdapter({ bodyLimit: api.maxBodyBytes });
  // Only JSON is a body here: text/plain must be a 415, not a string that fails validation.
  adapter.getInstance().removeContentTypeParser(['text/plain']);

  const app = await NestFactory.create<NestFastifyApplication>(AppModule.forRoot(config), adapter, {
    logger: createLogger(runtime, 'api'),
    // Fastify's own JSON parser is all we need; Nest's default would add a form-urlencoded one,
    // and a form body would get a 400 instead of the 415 due to anything that is not JSON.
    bodyParser: false,
  });
  app.useGlobalPipes(new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, transform: true }));
  serveOpenApi(app, api);
  return app;
}

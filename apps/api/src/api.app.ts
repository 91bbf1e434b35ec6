import { ValidationPipe } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { ApiAppConfig } from '@app/config';
import { createLogger } from '@app/observability';
import { AdmissionGate } from './admission/admission-gate';
import { AppModule } from './app.module';
import { acceptJsonBodies } from './body/json-body';
import { serveOpenApi } from './docs/openapi';
import { PipelinedRequests } from './pipelining/pipelined-requests';

/** How often Node looks for requests past REQUEST_TIMEOUT_MS: a slow one closes at most this much later. */
const CONNECTIONS_CHECKING_MS = 1_000;

/**
 * Builds the api exactly as `main.ts` runs it (tests use it too): Fastify with the body limit,
 * JSON as the only accepted body, and the OpenAPI description at /docs.
 */
export async function createApiApp(config: ApiAppConfig): Promise<NestFastifyApplication> {
  const { api, runtime } = config;
  const pipelined = new PipelinedRequests();
  const adapter = new FastifyAdapter({
    bodyLimit: api.maxBodyBytes,
    // JSON.parse makes `__proto__` an own property and pollutes nothing; the validation then names
    // it (and `constructor`) as a property that should not exist, with its entry, rather than
    // Fastify answering that valid JSON is not JSON.
    onProtoPoisoning: 'ignore',
    onConstructorPoisoning: 'ignore',
    // A request whose headers and body have not all arrived by then gets 408 and its connection is
    // closed. Node looks for such requests every connectionsCheckingInterval (30 s by default).
    requestTimeout: api.requestTimeoutMs,
    http: {
      requestTimeout: api.requestTimeoutMs,
      connectionsCheckingInterval: Math.min(CONNECTIONS_CHECKING_MS, api.requestTimeoutMs),
    },
    // The ShutdownGate answers 503 with Retry-After while closing; Fastify's own 503 has none.
    return503OnClosing: false,
    // A 400 for bytes after a request on its connection waits for that request's answer.
    clientErrorHandler: pipelined.onClientError,
  });
  pipelined.install(adapter.getInstance());
  // Only JSON in UTF-8 is a body here: text/plain must be a 415, not a string that fails validation.
  acceptJsonBodies(adapter.getInstance(), new AdmissionGate(api.maxBodyBytes, api.publishTimeoutMs));

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

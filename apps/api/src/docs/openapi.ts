import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, type OpenAPIObject, SwaggerModule } from '@nestjs/swagger';
import type { ApiConfig } from '@app/config';
import { CreateEntryDto } from '@app/contracts';

const BEARER = 'bearer';

/** Summaries of operations whose controllers live in libraries without OpenAPI decorators. */
const SUMMARIES: Record<string, string> = { '/metrics': 'Prometheus metrics of the process and its requests' };

/**
 * The api's OpenAPI description, completed with what decorators cannot hold: the configured
 * MAX_ENTRIES, `additionalProperties: false` (which the validation enforces), and the bearer token
 * (its scheme, and the requirement on POST /message) only when API_TOKEN is set, so that a
 * validating proxy (Prism) in front of an api without one lets requests through. No other
 * operation needs a token. The server is the origin the document is served from.
 */
export function buildOpenApiDocument(
  app: INestApplication,
  api: Pick<ApiConfig, 'maxEntries' | 'token'>,
): OpenAPIObject {
  const builder = new DocumentBuilder()
    .setTitle('async-data-processor api')
    .setDescription('Accepts batches of timestamped entries, shards them and publishes them to RabbitMQ.')
    .setVersion('1')
    .setLicense('MIT', 'https://opensource.org/licenses/MIT')
    .addServer('/', 'this api');
  if (api.token !== undefined) {
    builder.addBearerAuth(
      { type: 'http', scheme: 'bearer', bearerFormat: 'opaque', description: 'API_TOKEN, as the api runs with it' },
      BEARER,
    );
  }
  const config = builder.build();
  const document = SwaggerModule.createDocument(app, config, { extraModels: [CreateEntryDto] });
  const entry = document.components?.schemas?.[CreateEntryDto.name];
  if (entry && !('$ref' in entry)) entry.additionalProperties = false;
  for (const [path, item] of Object.entries(document.paths)) {
    for (const operation of [item.get, item.post]) {
      if (operation === undefined) continue;
      operation.summary ??= SUMMARIES[path];
      operation.security = [];
    }
  }
  const post = document.paths['/message']?.post;
  if (post !== undefined && api.token !== undefined) post.security = [{ [BEARER]: [] }];
  const body = post?.requestBody;
  const schema = body && 'content' in body ? body.content['application/json']?.schema : undefined;
  if (schema && !('$ref' in schema)) schema.maxItems = api.maxEntries;
  return document;
}

/** Serves the description at /docs-json and an interactive page at /docs. */
export function serveOpenApi(app: INestApplication, api: Pick<ApiConfig, 'maxEntries' | 'token'>): void {
  SwaggerModule.setup('docs', app, buildOpenApiDocument(app, api));
}

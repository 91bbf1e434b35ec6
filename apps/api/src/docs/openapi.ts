import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, type OpenAPIObject, SwaggerModule } from '@nestjs/swagger';
import type { ApiConfig } from '@app/config';
import { CreateEntryDto } from '@app/contracts';

/**
 * The api's OpenAPI description, completed with what decorators cannot hold: the configured
 * MAX_ENTRIES, and `additionalProperties: false`, which the validation enforces.
 */
export function buildOpenApiDocument(app: INestApplication, api: Pick<ApiConfig, 'maxEntries'>): OpenAPIObject {
  const config = new DocumentBuilder()
    .setTitle('async-data-processor api')
    .setDescription('Accepts batches of timestamped entries, shards them and publishes them to RabbitMQ.')
    .setVersion('1')
    .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'Needed only when the api runs with API_TOKEN' })
    .build();
  const document = SwaggerModule.createDocument(app, config, { extraModels: [CreateEntryDto] });
  const entry = document.components?.schemas?.[CreateEntryDto.name];
  if (entry && !('$ref' in entry)) entry.additionalProperties = false;
  const body = document.paths['/message']?.post?.requestBody;
  const schema = body && 'content' in body ? body.content['application/json']?.schema : undefined;
  if (schema && !('$ref' in schema)) schema.maxItems = api.maxEntries;
  return document;
}

/** Serves the description at /docs-json and an interactive page at /docs. */
export function serveOpenApi(app: INestApplication, api: Pick<ApiConfig, 'maxEntries'>): void {
  SwaggerModule.setup('docs', app, buildOpenApiDocument(app, api));
}

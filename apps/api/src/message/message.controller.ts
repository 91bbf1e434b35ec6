import { Body, Controller, HttpCode, HttpStatus, Post } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiBody,
  ApiCreatedResponse,
  ApiOperation,
  ApiPayloadTooLargeResponse,
  ApiRequestTimeoutResponse,
  ApiServiceUnavailableResponse,
  ApiTags,
  ApiUnauthorizedResponse,
  ApiUnsupportedMediaTypeResponse,
  getSchemaPath,
} from '@nestjs/swagger';
import { CreateEntryDto } from '@app/contracts';
import { EntriesValidationPipe } from './entries-validation.pipe';
import { type AcceptedEntries, IngestService } from './ingest.service';

const NEST_ERROR = {
  type: 'object',
  properties: {
    statusCode: { type: 'integer' },
    message: { oneOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }] },
    error: { type: 'string' },
  },
};

@ApiTags('ingest')
@Controller('message')
export class MessageController {
  constructor(private readonly ingest: IngestService) {}

  @Post()
  @HttpCode(HttpStatus.CREATED)
  @ApiOperation({
    summary: 'Accept a batch of timestamped entries',
    description:
      'Validates every entry, gives each an id, publishes them to their shard queues and answers once the broker ' +
      'has confirmed all of them. When several faults apply, the first of 401, 415, 413, 400 answers.',
  })
  @ApiBody({
    description: 'A non-empty array of entries, at most MAX_ENTRIES of them; no other property is allowed.',
    schema: { type: 'array', minItems: 1, items: { $ref: getSchemaPath(CreateEntryDto) } },
    examples: {
      sample: {
        value: [
          { timestamp: '2019-10-12T08:10:53.52Z', value: 'D' },
          { timestamp: '2019-10-12T08:10:52.52Z', value: 'E' },
          { timestamp: '2019-10-12T10:10:54.52+02:00' },
        ],
      },
    },
  })
  @ApiCreatedResponse({
    description: 'Every entry is confirmed by the broker; ids in request order.',
    schema: {
      type: 'object',
      required: ['accepted', 'ids'],
      properties: {
        accepted: { type: 'integer', example: 3 },
        ids: { type: 'array', items: { type: 'string', format: 'uuid' } },
      },
    },
  })
  @ApiBadRequestResponse({
    description:
      'Malformed JSON, not an array, empty, or an invalid entry; nothing is published. Each message names the entry ' +
      'index and field, e.g. "3.timestamp must be an RFC 3339 date-time with a time zone".',
    schema: NEST_ERROR,
  })
  @ApiUnauthorizedResponse({
    description: 'API_TOKEN is set and the bearer token is missing or wrong.',
    schema: NEST_ERROR,
  })
  @ApiPayloadTooLargeResponse({
    description: 'Body over MAX_BODY_BYTES, or more than MAX_ENTRIES entries.',
    schema: NEST_ERROR,
  })
  @ApiUnsupportedMediaTypeResponse({ description: 'The body is not application/json.', schema: NEST_ERROR })
  @ApiRequestTimeoutResponse({
    description: 'The request did not fully arrive within REQUEST_TIMEOUT_MS; the connection is closed.',
    schema: NEST_ERROR,
  })
  @ApiServiceUnavailableResponse({
    description:
      'RabbitMQ is unreachable or did not confirm within PUBLISH_TIMEOUT_MS, or the api is shutting down; ' +
      'send the request again later.',
    headers: { 'Retry-After': { description: 'Seconds to wait before retrying', schema: { type: 'integer' } } },
    schema: NEST_ERROR,
  })
  create(@Body(EntriesValidationPipe) entries: CreateEntryDto[]): Promise<AcceptedEntries> {
    return this.ingest.accept(entries);
  }
}

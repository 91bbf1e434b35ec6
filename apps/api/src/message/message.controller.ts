import { Body, Controller, HttpCode, HttpStatus, Post, Req, Res } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiBody,
  ApiConflictResponse,
  ApiCreatedResponse,
  ApiHeader,
  ApiOperation,
  ApiPayloadTooLargeResponse,
  ApiRequestTimeoutResponse,
  ApiServiceUnavailableResponse,
  ApiTags,
  ApiUnauthorizedResponse,
  ApiUnprocessableEntityResponse,
  ApiUnsupportedMediaTypeResponse,
  getSchemaPath,
} from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { CreateEntryDto } from '@app/contracts';
import {
  IDEMPOTENCY_KEY_HEADER,
  IDEMPOTENCY_KEY_MAX_LENGTH,
  IDEMPOTENT_REPLAYED_HEADER,
  readIdempotencyKey,
} from '../idempotency/idempotency-key';
import { IdempotencyService } from '../idempotency/idempotency.service';
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
  constructor(
    private readonly ingest: IngestService,
    private readonly idempotency: IdempotencyService,
  ) {}

  @Post()
  @HttpCode(HttpStatus.CREATED)
  @ApiOperation({
    summary: 'Accept a batch of timestamped entries',
    description:
      'Validates every entry, gives each an id, publishes them to their shard queues and answers once the broker ' +
      'has confirmed all of them. When several faults apply, the first of 401, 415, 413, 400 answers. With an ' +
      'Idempotency-Key, a repeat of the request is answered as the first was and stores nothing twice.',
  })
  @ApiHeader({
    name: IDEMPOTENCY_KEY_HEADER,
    required: false,
    description:
      `1 to ${IDEMPOTENCY_KEY_MAX_LENGTH} printable ASCII characters naming this request, so that sending it again is ` +
      'safe: a repeat with the same body after a 201 gets the same answer (the same ids) and ' +
      'Idempotent-Replayed: true; after a 503 it is processed again under the same ids. Keys are ' +
      'remembered for IDEMPOTENCY_TTL_S (one day by default), shared by every api replica through REDIS_URL.',
    schema: { type: 'string', minLength: 1, maxLength: IDEMPOTENCY_KEY_MAX_LENGTH, pattern: '^[\\x20-\\x7E]+$' },
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
    description:
      'Every entry is confirmed by the broker; ids in request order. A repeat of a keyed request gets the first ' +
      'answer again, with Idempotent-Replayed: true.',
    headers: {
      [IDEMPOTENT_REPLAYED_HEADER]: {
        description:
          'Present, and true, when this answer repeats the one given to an earlier request with the same key',
        schema: { type: 'string', enum: ['true'] },
      },
    },
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
      'Malformed JSON, not an array, empty, or an invalid entry, or an Idempotency-Key that is not 1 to 255 ' +
      'printable ASCII characters; nothing is published. Each message names the entry index and field, e.g. ' +
      '"3.timestamp must be an RFC 3339 date-time with a time zone", or the header.',
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
  @ApiUnsupportedMediaTypeResponse({
    description:
      'The body is not application/json, has a charset other than UTF-8, or is compressed (Content-Encoding).',
    schema: NEST_ERROR,
  })
  @ApiRequestTimeoutResponse({
    description: 'The request did not fully arrive within REQUEST_TIMEOUT_MS; the connection is closed.',
    schema: NEST_ERROR,
  })
  @ApiConflictResponse({
    description: 'A request with the same Idempotency-Key is still being processed; send it again later.',
    schema: NEST_ERROR,
  })
  @ApiUnprocessableEntityResponse({
    description: 'The Idempotency-Key was used before with a different body.',
    schema: NEST_ERROR,
  })
  @ApiServiceUnavailableResponse({
    description:
      'RabbitMQ is unreachable or did not confirm within PUBLISH_TIMEOUT_MS, the api is shutting down, the api is ' +
      'busy (the body waited PUBLISH_TIMEOUT_MS for its turn), or (for a ' +
      'request with an Idempotency-Key) the Redis of REDIS_URL does not answer; send the request again later, ' +
      'with the same key.',
    headers: { 'Retry-After': { description: 'Seconds to wait before retrying', schema: { type: 'integer' } } },
    schema: NEST_ERROR,
  })
  async create(
    @Body(EntriesValidationPipe) entries: CreateEntryDto[],
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<AcceptedEntries> {
    // Read after the body's validation: a bad key is a 400, after any 413 for too many entries.
    const key = readIdempotencyKey(request.raw);
    if (key === undefined) return this.ingest.accept(entries);
    const { answer, replayed } = await this.idempotency.run(key, request.keyedBody ?? '', (attempt) =>
      this.ingest.accept(entries, attempt),
    );
    if (replayed) void reply.header(IDEMPOTENT_REPLAYED_HEADER, 'true');
    return answer;
  }
}

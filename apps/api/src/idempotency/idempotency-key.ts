import { BadRequestException } from '@nestjs/common';
import type { IncomingMessage } from 'node:http';

/** The request header a client names a request with, so that repeating it is safe. */
export const IDEMPOTENCY_KEY_HEADER = 'Idempotency-Key';
/** The response header of a 201 that repeats the answer to an earlier request with the same key. */
export const IDEMPOTENT_REPLAYED_HEADER = 'Idempotent-Replayed';
export const IDEMPOTENCY_KEY_MAX_LENGTH = 255;

const PRINTABLE_ASCII = /^[\x20-\x7e]+$/;

/**
 * The key of a request, or undefined when it has none. A key is 1 to 255 printable ASCII
 * characters (space to `~`); anything else, or the header sent twice, is a 400 naming the header.
 */
export function readIdempotencyKey({
  headers,
  rawHeaders,
}: Pick<IncomingMessage, 'headers' | 'rawHeaders'>): string | undefined {
  const value = headers['idempotency-key'];
  if (value === undefined) return undefined;
  // Node joins a header sent twice into one value ("a, b"), itself a valid key: count the raw lines.
  if (Array.isArray(value) || timesSent(rawHeaders) > 1) {
    throw new BadRequestException(`${IDEMPOTENCY_KEY_HEADER} must be sent once`);
  }
  if (value.length === 0 || value.length > IDEMPOTENCY_KEY_MAX_LENGTH || !PRINTABLE_ASCII.test(value)) {
    throw new BadRequestException(
      `${IDEMPOTENCY_KEY_HEADER} must be 1 to ${IDEMPOTENCY_KEY_MAX_LENGTH} printable ASCII characters`,
    );
  }
  return value;
}

/** How many times the request's head carries the Idempotency-Key header (names at even indexes). */
function timesSent(rawHeaders: readonly string[]): number {
  let count = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i].toLowerCase() === 'idempotency-key') count++;
  }
  return count;
}

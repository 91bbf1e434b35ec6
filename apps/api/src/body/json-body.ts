import { isUtf8 } from 'node:buffer';
import { BadRequestException, UnsupportedMediaTypeException } from '@nestjs/common';
import type { FastifyInstance } from 'fastify';
import type { IncomingHttpHeaders } from 'node:http';

declare module 'fastify' {
  interface FastifyRequest {
    /** The JSON body as received, kept only for a request with an Idempotency-Key: its fingerprint. */
    keyedBody: string | undefined;
  }
}

const UTF8 = /^"?utf-?8"?$/i;

/**
 * Why a body cannot be read as sent, from its head alone: a content coding (the api does not
 * decompress) or a charset other than UTF-8, which JSON must be in (RFC 8259, 8.1). Undefined when
 * it can.
 */
export function unreadableBody(headers: IncomingHttpHeaders): string | undefined {
  const coding = headers['content-encoding']?.trim();
  if (coding !== undefined && coding !== '' && coding.toLowerCase() !== 'identity') {
    return `Content-Encoding ${coding} is not supported: send the JSON body uncompressed`;
  }
  const charset = /;\s*charset\s*=\s*([^;\s]*)/i.exec(headers['content-type'] ?? '')?.[1];
  if (charset !== undefined && !UTF8.test(charset)) {
    return `charset ${charset} is not supported: a JSON body is UTF-8`;
  }
  return undefined;
}

/**
 * The api's one body format, JSON in UTF-8:
 * - a compressed body or another charset is a 415 from the head, before the body is read (so
 *   before any 413, as the contract orders them), and text/plain is not parsed at all (415 too);
 * - bytes that are not UTF-8 are a 400 saying so (Fastify's string reader would call it a
 *   Content-Length mismatch);
 * - Fastify's own JSON parser (the same poisoning options) reads the rest, keeping the body text of
 *   a request with an Idempotency-Key so that its fingerprint is of the bytes the client sent.
 */
export function acceptJsonBodies(fastify: FastifyInstance): void {
  const parse = fastify.getDefaultJsonParser('ignore', 'ignore');
  fastify.decorateRequest('keyedBody', undefined);
  fastify.removeContentTypeParser(['text/plain', 'application/json']);
  fastify.addHook('preParsing', (request, _reply, payload, done) => {
    const problem = unreadableBody(request.headers);
    if (problem === undefined) done(null, payload);
    else done(new UnsupportedMediaTypeException(problem));
  });
  fastify.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, bytes: Buffer, done) => {
    if (!isUtf8(bytes)) return done(new BadRequestException('the body is not valid UTF-8'), undefined);
    const body = bytes.toString('utf8');
    if (request.headers['idempotency-key'] !== undefined) request.keyedBody = body;
    void parse(request, body, done);
  });
}

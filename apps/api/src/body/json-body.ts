import { isUtf8 } from 'node:buffer';
import { BadRequestException, UnsupportedMediaTypeException } from '@nestjs/common';
import type { FastifyInstance } from 'fastify';
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { AdmissionGate } from '../admission/admission-gate';

declare module 'fastify' {
  interface FastifyRequest {
    /** The JSON body as received, kept only for a request with an Idempotency-Key: its fingerprint. */
    keyedBody: string | undefined;
    /** The answer to this request: a body waiting for its turn gives its place up when it closes. */
    response: ServerResponse | undefined;
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
 * - a body that has arrived waits for its turn at the `gate` (a 503 if it waits too long);
 * - bytes that are not UTF-8 are a 400 saying so (Fastify's string reader would call it a
 *   Content-Length mismatch);
 * - Fastify's own JSON parser (the same poisoning options) reads the rest, keeping the body text of
 *   a request with an Idempotency-Key so that its fingerprint is of the bytes the client sent.
 */
export function acceptJsonBodies(fastify: FastifyInstance, gate: AdmissionGate): void {
  const parse = fastify.getDefaultJsonParser('ignore', 'ignore');
  fastify.decorateRequest('keyedBody', undefined);
  fastify.decorateRequest('response', undefined);
  fastify.removeContentTypeParser(['text/plain', 'application/json']);
  fastify.addHook('preParsing', (request, reply, payload, done) => {
    const problem = unreadableBody(request.headers);
    if (problem !== undefined) return done(new UnsupportedMediaTypeException(problem));
    request.response = reply.raw;
    done(null, payload);
  });
  fastify.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, bytes: Buffer, done) => {
    gate.admit(bytes.length, request.response as ServerResponse).then((release) => {
      // Parsing, validation and publishing run on from `done` up to the wait for confirms; the
      // budget comes back on the next turn of the event loop, once they have.
      setImmediate(release);
      if (!isUtf8(bytes)) return done(new BadRequestException('the body is not valid UTF-8'), undefined);
      const body = bytes.toString('utf8');
      if (request.headers['idempotency-key'] !== undefined) request.keyedBody = body;
      void parse(request, body, done);
    }, done);
  });
}

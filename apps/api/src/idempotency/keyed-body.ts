import type { FastifyInstance } from 'fastify';

declare module 'fastify' {
  interface FastifyRequest {
    /** The JSON body as received, kept only for a request with an Idempotency-Key: its fingerprint. */
    keyedBody: string | undefined;
  }
}

/**
 * Fastify's own JSON parser (the same poisoning options), which also keeps the body text of a
 * request with an Idempotency-Key, so the fingerprint is of the bytes the client sent, not of a
 * re-serialisation. A request without the key pays one header lookup.
 */
export function keepBodyOfKeyedRequests(fastify: FastifyInstance): void {
  const parse = fastify.getDefaultJsonParser('ignore', 'ignore');
  fastify.decorateRequest('keyedBody', undefined);
  fastify.removeContentTypeParser('application/json');
  fastify.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body: string, done) => {
    if (request.headers['idempotency-key'] !== undefined) request.keyedBody = body;
    void parse(request, body, done);
  });
}

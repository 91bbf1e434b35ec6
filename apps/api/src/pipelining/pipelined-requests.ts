import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';

/** The requests of one connection not all answered yet. */
interface Unanswered {
  /** The connection's latest request. */
  latest: IncomingMessage;
  /** Settles once every request of the connection before the latest is answered. */
  before: Promise<void>;
  /** Settles once every request of the connection, the latest included, is answered. */
  all: Promise<void>;
}

const SETTLED = Promise.resolve();

/**
 * HTTP/1.1 pipelining (several requests sent without waiting for answers), answered as RFC 9112
 * asks. Node emits every pipelined request at once and only queues their answers, so:
 * - a request runs only once the answers to the requests before it on its connection are sent,
 *   and not at all if one of them closed the connection (`Connection: close`, e.g. the 400 for a
 *   body that is not JSON): it would be published, and its answer never sent (RFC 9112, 9.6);
 * - bytes that are not HTTP after a request get their 400 after that request's answer: Fastify
 *   wrote it at once, as the first answer on the connection, for a request that was published.
 */
export class PipelinedRequests {
  private readonly unanswered = new WeakMap<Socket, Unanswered>();

  /** Holds each request until the requests before it on its connection are answered. */
  install(fastify: FastifyInstance): void {
    fastify.addHook('onRequest', (request, reply, done) => {
      const socket = request.raw.socket;
      const previous = this.unanswered.get(socket);
      const answered = new Promise<void>((resolve) => reply.raw.once('close', resolve));
      const before = previous?.all ?? SETTLED;
      const own: Unanswered = {
        latest: request.raw,
        before,
        all: previous === undefined ? answered : Promise.all([before, answered]).then(() => undefined),
      };
      this.unanswered.set(socket, own);
      void own.all.then(() => {
        if (this.unanswered.get(socket) === own) this.unanswered.delete(socket);
      });
      if (previous === undefined) return done();
      // A request dropped here is never answered: the connection closed before its turn.
      void before.then(() => {
        if (socket.writable) done();
      });
    });
  }

  /**
   * Fastify's `clientErrorHandler`: answers what Node could not parse (400), a head too large
   * (431) or a request that did not arrive in time (408), then closes the connection; after the
   * answers to the whole requests before it, when there are some.
   */
  readonly onClientError = (error: NodeJS.ErrnoException, socket: Socket): void => {
    const unanswered = this.unanswered.get(socket);
    // The fault is in the latest request when it has not all arrived, else in bytes after it.
    const wait = unanswered === undefined ? SETTLED : unanswered.latest.complete ? unanswered.all : unanswered.before;
    void wait.then(() => answerClientError(error, socket));
  };
}

/** How long a connection answered with a client error may take to read what is buffered for it. */
const CLOSE_AFTER_ERROR_MS = 10_000;

/** What Fastify's default clientErrorHandler answers (same statuses and bodies). */
function answerClientError(error: NodeJS.ErrnoException, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, message] =
    error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'Client Timeout']
      : error.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'Exceeded maximum allowed HTTP header size']
        : [400, 'Client Error'];
  const reason = STATUS_CODES[status] ?? '';
  const body = JSON.stringify({ error: reason, message, statusCode: status });
  if (!socket.writable) {
    socket.destroy(error);
    return;
  }
  // end(), not destroy(): the answers before this one may still be buffered (a client that is slow
  // to read), and destroy() would drop them: a 201 lost on its way is a retry that stores twice.
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Length: ${body.length}\r\nContent-Type: application/json\r\n\r\n${body}`,
  );
  setTimeout(() => socket.destroy(), CLOSE_AFTER_ERROR_MS).unref();
}

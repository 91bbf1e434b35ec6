import { type BeforeApplicationShutdown, HttpStatus, Injectable, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';

/** Seconds a client is asked to wait before sending again, on every 503. */
export const RETRY_AFTER_SECONDS = 1;

/** The route that stays open while shutting down, to say so in its own words. */
const HEALTH_ROUTE = '/health';

interface OpenRequest {
  request: IncomingMessage;
  reply: FastifyReply;
}

/**
 * Closes the api's door on shutdown. From the moment Nest starts shutting down:
 * - a request that arrives gets 503 with Retry-After (and its connection closes), but /health,
 *   which answers 503 itself;
 * - a request still being uploaded gets the same 503 and its connection closes, and a connection
 *   with no request in flight (idle, or its headers still trickling in) closes at once. Node stops
 *   timing requests out (REQUEST_TIMEOUT_MS) once the server closes, so a slow client would
 *   otherwise hold the shutdown until the process is killed;
 * - a request that arrived whole runs to its answer (its publishes settle before the broker
 *   connection closes).
 */
@Injectable()
export class ShutdownGate implements OnModuleInit, BeforeApplicationShutdown {
  private closing = false;
  private readonly sockets = new Set<Socket>();
  /** The request each socket is serving now, until its answer is sent. */
  private readonly open = new Map<Socket, OpenRequest>();

  constructor(private readonly adapterHost: HttpAdapterHost) {}

  /** True from the start of the shutdown. */
  get shuttingDown(): boolean {
    return this.closing;
  }

  onModuleInit(): void {
    const fastify = this.adapterHost.httpAdapter?.getInstance<FastifyInstance>();
    if (fastify === undefined) return;
    fastify.server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    fastify.addHook('onRequest', (request, reply, done) => {
      if (this.closing && request.routeOptions.url !== HEALTH_ROUTE) return refuse(reply);
      const socket = request.raw.socket;
      this.open.set(socket, { request: request.raw, reply });
      reply.raw.once('close', () => {
        if (this.open.get(socket)?.reply === reply) this.open.delete(socket);
      });
      done();
    });
    // Right before the server stops listening, and again for anything that connected since.
    fastify.addHook('preClose', (done) => {
      this.closeSlowConnections();
      done();
    });
  }

  beforeApplicationShutdown(): void {
    this.closing = true;
    this.closeSlowConnections();
  }

  private closeSlowConnections(): void {
    for (const socket of this.sockets) {
      const open = this.open.get(socket);
      if (open === undefined) socket.destroy();
      else if (!open.request.complete) refuse(open.reply);
    }
  }
}

/** 503 with Retry-After; `Connection: close` has Node close the connection once it is sent. */
function refuse(reply: FastifyReply): void {
  if (reply.sent || reply.raw.headersSent) return;
  void reply
    .code(HttpStatus.SERVICE_UNAVAILABLE)
    .header('Retry-After', String(RETRY_AFTER_SECONDS))
    .header('Connection', 'close')
    .send({
      statusCode: HttpStatus.SERVICE_UNAVAILABLE,
      error: 'Service Unavailable',
      message: 'the api is shutting down; send the request again',
    });
}

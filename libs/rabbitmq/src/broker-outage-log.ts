import { inspect } from 'node:util';
import type { Logger } from '@nestjs/common';
import { redactUrl } from './redact-url';

/**
 * Logs a broker outage once when it starts, with how to start a broker, and once when it ends,
 * however many reconnect attempts happen in between.
 */
export class BrokerOutageLog {
  private away = false;

  constructor(
    private readonly logger: Logger,
    private readonly url: string,
    private readonly consequence: string,
  ) {}

  lost(error: unknown): void {
    if (this.away) return;
    this.away = true;
    const cause = describeCause(error);
    this.logger.warn(
      `RabbitMQ is not reachable at ${redactUrl(this.url)} (${cause}); ${this.consequence} and retrying. ` +
        'Start one with `docker compose up -d rabbitmq` or `rabbitmq-server -detached`.',
    );
  }

  restored(): void {
    if (!this.away) return;
    this.away = false;
    this.logger.log(`connected to RabbitMQ again at ${redactUrl(this.url)}`);
  }
}

/** amqp-connection-manager reports failures as `{ err, url }` events rather than Errors. */
function describeCause(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (typeof error === 'object' && error !== null && 'err' in error) return describeCause(error.err);
  if (error === undefined || error === null) return 'connection closed';
  return typeof error === 'string' ? error : inspect(error, { depth: 2, breakLength: Infinity });
}

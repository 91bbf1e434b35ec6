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

  get isAway(): boolean {
    return this.away;
  }

  lost(error: unknown): void {
    if (this.away) return;
    this.away = true;
    const cause = error instanceof Error ? error.message : String(error ?? 'connection closed');
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

import { inspect } from 'node:util';
import type { Logger } from '@nestjs/common';
import { redactUrl, redactUrls } from './redact-url';

/**
 * Logs a broker outage once when it starts, with how to start a broker, and once when it ends,
 * however many reconnect attempts happen in between. On a cluster (several URLs) it names the node
 * that went, the node reached at the end, and every node tried in between.
 */
export class BrokerOutageLog {
  private away = false;
  /** The node of the last connection: the one a disconnect (which carries no URL) lost. */
  private current?: string;
  /** The nodes that failed during this outage, in the order they failed. */
  private readonly tried = new Set<string>();

  constructor(
    private readonly logger: Logger,
    private readonly urls: readonly string[],
    private readonly consequence: string,
  ) {}

  /** The connection to `url` (or the node last connected) is lost, or an attempt to reach it failed. */
  lost(error: unknown, url?: string): void {
    const node = url ?? this.current ?? this.urls[0];
    this.tried.add(node);
    if (this.away) return;
    this.away = true;
    const cause = describeCause(error);
    const retrying =
      this.urls.length > 1
        ? `retrying on the nodes in turn (${redactUrls(this.urls)}).`
        : 'retrying. Start one with `docker compose up -d rabbitmq` or `rabbitmq-server -detached`.';
    this.logger.warn(`RabbitMQ is not reachable at ${redactUrl(node)} (${cause}); ${this.consequence} and ${retrying}`);
  }

  /** Connected to `url`; logs the end of an outage, naming the nodes tried meanwhile. */
  restored(url?: string): void {
    if (url !== undefined) this.current = url;
    if (!this.away) return;
    this.away = false;
    const node = this.current ?? this.urls[0];
    const tried = this.urls.length > 1 ? ` (nodes that failed meanwhile: ${redactUrls([...this.tried])})` : '';
    this.tried.clear();
    this.logger.log(`connected to RabbitMQ again at ${redactUrl(node)}${tried}`);
  }
}

/** amqp-connection-manager reports failures as `{ err, url }` events rather than Errors. */
function describeCause(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (typeof error === 'object' && error !== null && 'err' in error) return describeCause(error.err);
  if (error === undefined || error === null) return 'connection closed';
  return typeof error === 'string' ? error : inspect(error, { depth: 2, breakLength: Infinity });
}

import { Counter, Gauge, type Registry } from 'prom-client';

/** `broker_connected` and `broker_reconnects_total`, the same in both apps. */
export class BrokerMetrics {
  private readonly up: Gauge;
  private readonly reconnects: Counter;
  private connectedBefore = false;

  constructor(registry: Registry) {
    this.up = new Gauge({
      name: 'broker_connected',
      help: '1 while connected to RabbitMQ, else 0',
      registers: [registry],
    });
    this.reconnects = new Counter({
      name: 'broker_reconnects_total',
      help: 'Connections to RabbitMQ made again after one was lost',
      registers: [registry],
    });
  }

  /** On every successful connect; the first one is not a reconnect. */
  connected(): void {
    this.up.set(1);
    if (this.connectedBefore) this.reconnects.inc();
    this.connectedBefore = true;
  }

  disconnected(): void {
    this.up.set(0);
  }
}

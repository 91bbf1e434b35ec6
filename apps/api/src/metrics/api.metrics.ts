import { Injectable } from '@nestjs/common';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** What the api counts, on the app's registry; see `GET /metrics`. */
@Injectable()
export class ApiMetrics {
  readonly entriesAccepted: Counter;
  readonly publishConfirmSeconds: Histogram<'outcome'>;
  readonly brokerReconnects: Counter;
  readonly brokerConnected: Gauge;

  constructor(registry: Registry) {
    const registers = [registry];
    this.entriesAccepted = new Counter({
      name: 'api_entries_accepted_total',
      help: 'Entries answered 201: confirmed by the broker',
      registers,
    });
    this.publishConfirmSeconds = new Histogram({
      name: 'api_publish_confirm_seconds',
      help: 'Time from publishing a shard message to its publisher confirm (outcome confirmed or failed)',
      labelNames: ['outcome'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.brokerReconnects = new Counter({
      name: 'broker_reconnects_total',
      help: 'Connections to RabbitMQ made again after one was lost',
      registers,
    });
    this.brokerConnected = new Gauge({
      name: 'broker_connected',
      help: '1 while connected to RabbitMQ, else 0',
      registers,
    });
  }
}

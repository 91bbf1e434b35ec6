import { Injectable } from '@nestjs/common';
import { Counter, Histogram, Registry } from 'prom-client';
import { BrokerMetrics, LATENCY_BUCKETS_SECONDS } from '@app/observability';

/** What the api counts, on the app's registry; see `GET /metrics`. */
@Injectable()
export class ApiMetrics {
  readonly entriesAccepted: Counter;
  readonly publishConfirmSeconds: Histogram<'outcome'>;
  readonly broker: BrokerMetrics;

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
      buckets: LATENCY_BUCKETS_SECONDS,
      registers,
    });
    this.broker = new BrokerMetrics(registry);
  }
}

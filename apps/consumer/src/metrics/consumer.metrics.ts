import { Injectable } from '@nestjs/common';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { BrokerMetrics, LATENCY_BUCKETS_SECONDS } from '@app/observability';

/** What the consumer counts, on the app's registry; see `GET /metrics`. */
@Injectable()
export class ConsumerMetrics {
  readonly entriesWritten: Counter<'shard' | 'worker'>;
  readonly batchWriteSeconds: Histogram<'shard'>;
  readonly activeWorkers: Gauge<'shard'>;
  readonly workerTimeouts: Counter<'shard'>;
  readonly deadLettered: Counter<'shard'>;
  readonly broker: BrokerMetrics;

  constructor(registry: Registry) {
    const registers = [registry];
    this.entriesWritten = new Counter({
      name: 'consumer_entries_written_total',
      help: 'Entries written to complete batch files, by shard and worker',
      labelNames: ['shard', 'worker'],
      registers,
    });
    this.batchWriteSeconds = new Histogram({
      name: 'consumer_batch_write_seconds',
      help: 'Time to write one batch file (stage, fsync, rename), by shard',
      labelNames: ['shard'],
      buckets: LATENCY_BUCKETS_SECONDS,
      registers,
    });
    this.activeWorkers = new Gauge({
      name: 'consumer_active_workers',
      help: 'Live workers in each shard pool',
      labelNames: ['shard'],
      registers,
    });
    this.workerTimeouts = new Counter({
      name: 'consumer_worker_timeouts_total',
      help: 'Workers retired because a batch write outlived WORKER_TIMEOUT_MS, by shard',
      labelNames: ['shard'],
      registers,
    });
    this.deadLettered = new Counter({
      name: 'consumer_dead_lettered_total',
      help: 'Deliveries rejected to the dead-letter queue as invalid, by shard',
      labelNames: ['shard'],
      registers,
    });
    this.broker = new BrokerMetrics(registry);
  }
}

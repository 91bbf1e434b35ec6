import { Logger } from '@nestjs/common';
import type { ChannelWrapper } from 'amqp-connection-manager';
import type { Channel, ConsumeMessage, Message } from 'amqplib';
import type { ConsumerConfig, RabbitmqConfig } from '@app/config';
import { PermanentMessageError, decodeShardPacket, encodeEntryLine } from '@app/contracts';
import { describeError, logEvent } from '@app/observability';
import { RECONNECT_SECONDS, assertTopology } from '@app/rabbitmq';
import { shardQueueName } from '@app/sharding';
import { SharedBatch } from '../batch/shared-batch';
import type { BrokerConnection } from '../broker/broker-connection.service';
import type { FileSinkService } from '../file-sink/file-sink.service';
import type { ConsumerMetrics } from '../metrics/consumer.metrics';
import { DEFAULT_POOL_OPTIONS, WorkerPool } from '../worker-pool/worker-pool';
import type { BatchJob } from '../worker-pool/worker-pool.types';

/** One delivery from the broker and how many of its entries are not yet in a complete file. */
interface Delivery {
  /** What an ack needs (its delivery tag), without the body, which is decoded already. */
  message: Message;
  channel: Channel;
  generation: number;
  remaining: number;
}

const EMPTY = Buffer.alloc(0);

interface PendingEntry {
  line: string;
  delivery: Delivery;
}

interface OpenChannel {
  channel: Channel;
  generation: number;
  consumerTag?: string;
}

export interface ShardRuntimeDeps {
  rabbitmq: RabbitmqConfig;
  consumer: ConsumerConfig;
  connection: BrokerConnection;
  sink: FileSinkService;
  metrics: ConsumerMetrics;
}

/**
 * Everything one shard owns: its channel and consumer, its worker pool, and the batch the pool
 * shares. A delivery is acknowledged once every entry it carried is in a complete file, and
 * only on the channel that delivered it.
 */
export class ShardRuntime {
  readonly pool: WorkerPool<PendingEntry>;
  private readonly logger: Logger;
  private readonly queue: string;
  private readonly batch: SharedBatch<PendingEntry>;
  private wrapper?: ChannelWrapper;
  private current?: OpenChannel;
  /** Counts channels: a delivery may only be acked while its channel's generation is current. */
  private generation = 0;
  /** Deliveries of the current channel not yet acked; at PREFETCH no more will come. */
  private unacked = 0;
  private stopping = false;
  private reopenTimer?: NodeJS.Timeout;
  /** Identifies the current channel wrapper: a stale one's late setup closes its channel instead. */
  private wrapperToken?: object;
  /** The running channel setup, which stop() waits for so that no consumer starts behind it. */
  private settingUp: Promise<void> = Promise.resolve();
  private stopped?: Promise<void>;
  private closed?: Promise<void>;
  /** Set by the first channel error, cleared once consuming: a failure is explained once, not per retry. */
  private failing = false;

  constructor(
    readonly shard: number,
    private readonly deps: ShardRuntimeDeps,
  ) {
    const { consumer, metrics } = deps;
    const labels = { shard: String(shard) };
    this.logger = new Logger(`Shard ${shard}`);
    this.queue = shardQueueName(deps.rabbitmq.queuePrefix, shard);
    this.batch = new SharedBatch({ size: consumer.batchSize, flushMs: consumer.batchFlushMs });
    this.pool = new WorkerPool(
      {
        ...DEFAULT_POOL_OPTIONS,
        shard,
        min: consumer.workersMin,
        max: consumer.workersMax,
        timeoutMs: consumer.workerTimeoutMs,
      },
      this.batch,
      (job) => this.writeBatch(job),
      {
        written: (items, worker, ms) => {
          metrics.entriesWritten.inc({ ...labels, worker }, items.length);
          metrics.batchWriteSeconds.observe(labels, ms / 1000);
          this.onWritten(items);
        },
        resized: (size, { reason }) => {
          metrics.activeWorkers.set(labels, size);
          if (reason === 'timeout') metrics.workerTimeouts.inc(labels);
        },
        forgotten: (worker) => metrics.entriesWritten.remove({ ...labels, worker }),
        // With every delivery the prefetch allows in hand, no more entries can arrive to fill
        // the batch: write what is there rather than wait for BATCH_FLUSH_MS.
        flushEarly: () => this.unacked >= this.deps.consumer.prefetch,
      },
    );
  }

  /** Whether the shard has a live consumer on its queue right now. */
  isConsuming(): boolean {
    return this.current?.consumerTag !== undefined;
  }

  /** Starts the workers and consuming; call once the sink is ready. */
  start(): void {
    this.pool.start();
    this.openChannel();
  }

  /** Stops consuming, then writes and acknowledges everything buffered. Idempotent. */
  stop(): Promise<void> {
    this.stopped ??= this.drain();
    return this.stopped;
  }

  /** Retires the workers and closes the channel; anything unacknowledged goes back to the broker. Idempotent. */
  close(): Promise<void> {
    this.closed ??= this.shut();
    return this.closed;
  }

  private async drain(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.reopenTimer);
    // A setup under way sees `stopping` and cancels its own consumer; wait for it.
    await this.settingUp;
    const open = this.current;
    if (open?.consumerTag !== undefined) {
      try {
        await open.channel.cancel(open.consumerTag);
      } catch (error) {
        this.logger.warn(`could not cancel the consumer of ${this.queue}: ${describeError(error)}`);
      }
    }
    await this.pool.drain();
  }

  private async shut(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.reopenTimer);
    this.pool.close();
    await this.wrapper?.close();
  }

  private openChannel(): void {
    const token = {};
    this.wrapperToken = token;
    const wrapper = this.deps.connection.createChannel({
      name: this.queue,
      confirm: false,
      setup: (channel: Channel) => {
        // A replaced wrapper may still finish a reconnect: it must not consume beside the new one.
        if (token !== this.wrapperToken) return channel.close();
        const run = this.setup(channel);
        this.settingUp = run.catch(() => undefined);
        return run;
      },
    });
    wrapper.on('error', (error: Error) => this.logChannelError(error));
    this.wrapper = wrapper;
  }

  /** Runs on every new channel: a new generation, the topology, the prefetch, the consumer. */
  private async setup(channel: Channel): Promise<void> {
    const generation = ++this.generation;
    this.unacked = 0;
    this.current = { channel, generation };
    channel.on('error', (error: Error) => this.logChannelError(error));
    channel.on('close', () => this.onChannelClosed(generation));
    await assertTopology(channel, this.deps.rabbitmq);
    await channel.prefetch(this.deps.consumer.prefetch);
    if (this.stopping) return;
    const { consumerTag } = await channel.consume(
      this.queue,
      (message) => this.onDelivery(message, channel, generation),
      { noAck: false },
    );
    if (this.stopping) {
      // stop() began while the consumer was being set up: it waits for this cancel.
      await channel.cancel(consumerTag);
      return;
    }
    if (this.current?.generation === generation) this.current.consumerTag = consumerTag;
    this.failing = false;
    this.logger.log(`consuming ${this.queue}`);
  }

  private logChannelError(error: Error): void {
    if (this.failing) {
      this.logger.debug(`channel of ${this.queue} failed again: ${error.message}`);
      return;
    }
    this.failing = true;
    const hint = /PRECONDITION_FAILED|inequivalent arg/.test(error.message)
      ? ' (the queues exist with other arguments: do QUEUE_TYPE and QUEUE_PREFIX match the queues already declared?)'
      : '';
    this.logger.error(`channel of ${this.queue} failed: ${error.message}${hint}; retrying`);
  }

  private onDelivery(message: ConsumeMessage | null, channel: Channel, generation: number): void {
    if (message === null) {
      // Closing the channel returns its unacked deliveries; a new one resubscribes.
      this.logger.error(`the broker cancelled the consumer of ${this.queue}; reopening its channel`);
      channel.close().catch((error: unknown) => this.logger.warn(`closing the channel: ${describeError(error)}`));
      return;
    }
    let lines: string[];
    try {
      lines = decodeShardPacket(message.content, this.shard, this.deps.rabbitmq.shardsCount).map(encodeEntryLine);
    } catch (error) {
      // Anything the edge cannot decode would fail the same way on every redelivery.
      const reason = error instanceof PermanentMessageError ? error.message : `cannot decode: ${describeError(error)}`;
      this.logger.error(`dead-lettering a delivery of ${this.queue}: ${reason}`);
      channel.nack(message, false, false);
      this.deps.metrics.deadLettered.inc({ shard: String(this.shard) });
      return;
    }
    this.unacked++;
    const ackable: Message = { fields: message.fields, properties: message.properties, content: EMPTY };
    const delivery: Delivery = { message: ackable, channel, generation, remaining: lines.length };
    this.batch.add(lines.map((line) => ({ line, delivery })));
    this.pool.notify();
  }

  private async writeBatch(job: BatchJob<PendingEntry>): Promise<void> {
    const file = await this.deps.sink.write(
      job.workerId,
      job.items.map((item) => item.line),
      job,
    );
    const entries = job.items.length;
    this.logger.log(
      logEvent(`worker ${job.workerId} wrote ${entries} ${entries === 1 ? 'entry' : 'entries'} to ${file}`, {
        event: 'batch_written',
        worker: job.workerId,
        shard: this.shard,
        entries,
        file,
      }),
    );
  }

  private onWritten(items: PendingEntry[]): void {
    for (const { delivery } of items) {
      delivery.remaining--;
      if (delivery.remaining === 0) this.ack(delivery);
    }
  }

  private ack(delivery: Delivery): void {
    // A delivery of a closed channel cannot be acked (its tag means nothing on a new channel):
    // the broker delivers it again, and the entries' ids tell the copies apart.
    if (delivery.generation !== this.current?.generation) return;
    try {
      delivery.channel.ack(delivery.message);
      this.unacked--;
    } catch (error) {
      // The channel is closing under us: the broker delivers it again.
      this.logger.warn(`could not acknowledge a delivery of ${this.queue}: ${describeError(error)}`);
    }
  }

  private onChannelClosed(generation: number): void {
    if (generation !== this.current?.generation) return;
    this.current = undefined;
    this.unacked = 0;
    // Their deliveries go back to the queue: writing these entries now would only duplicate them.
    const dropped = this.batch.discard((item) => item.delivery.generation === generation);
    if (dropped > 0)
      this.logger.warn(`channel of ${this.queue} closed; ${dropped} buffered entries will be redelivered`);
    this.scheduleReopen();
  }

  /**
   * amqp-connection-manager reopens channels only when the connection comes back; a channel the
   * broker closed on a live connection stays closed, so reopen it here.
   */
  private scheduleReopen(): void {
    if (this.stopping) return;
    clearTimeout(this.reopenTimer);
    this.reopenTimer = setTimeout(
      () => {
        if (this.stopping || this.current !== undefined || !this.deps.connection.isConnected()) return;
        if (this.failing) this.logger.debug(`reopening the channel of ${this.queue}`);
        else this.logger.warn(`reopening the channel of ${this.queue}`);
        const stale = this.wrapper;
        this.openChannel();
        stale?.close().catch((error: unknown) => this.logger.warn(`closing a stale channel: ${describeError(error)}`));
      },
      RECONNECT_SECONDS * 1000 + 500,
    );
  }
}

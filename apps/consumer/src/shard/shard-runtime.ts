import { Logger } from '@nestjs/common';
import type { ConsumeMessage, Message } from 'amqplib';
import type { ConsumerConfig, RabbitmqConfig } from '@app/config';
import {
  SHARD_MESSAGE_MAX_BYTES,
  ShardMismatchError,
  type WireEntry,
  decodeShardPacket,
  encodeEntryLine,
  readShardsCountHeader,
} from '@app/contracts';
import { describeError, logEvent } from '@app/observability';
import { shardQueueName } from '@app/sharding';
import type { BatchBufferOptions } from '../batch/batch-buffer';
import type { Dedupe } from '../dedupe/dedupe';
import type { FileSinkService } from '../file-sink/file-sink.service';
import type { ConsumerMetrics } from '../metrics/consumer.metrics';
import { DEFAULT_POOL_OPTIONS, WorkerPool } from '../worker-pool/worker-pool';
import type { BatchJob, WorkerRecord } from '../worker-pool/worker-pool.types';
import { DeliveryWindow } from './delivery-window';
import { LargeGarbage } from './large-garbage';
import { type ChannelSource, ShardChannel } from './shard-channel';

/** One full garbage collection per this many bytes of large messages written (docs/consumer-memory.md). */
const largeGarbage = new LargeGarbage(16 * 1024 * 1024);

/** One delivery from the broker, as far as an ack needs it, and the channel generation it came on. */
export interface Delivery {
  /** Its delivery tag and properties, without the body, which is decoded already. */
  message: Message;
  generation: number;
  /** When its Idempotency-Key expires (epoch ms), 0 without one: its ledger records live that long. */
  exp: number;
  /** Its size and entries, counted in the shard's DeliveryWindow until it is settled (then undefined). */
  held?: { bytes: number; entries: number };
}

/** One entry on its way to a file: its id and line, and the delivery to ack once all of that delivery's lines are written. */
export interface PendingEntry {
  id: string;
  line: string;
  delivery: Delivery;
}

/**
 * A batch's commit found a delivery of a closed channel in it: the batch is not renamed into place
 * (those deliveries are redelivered and written wherever they land); the rest is written again.
 */
export class StaleDeliveryError extends Error {
  constructor() {
    super('a delivery of this batch belongs to a closed channel; not completing the batch');
    this.name = StaleDeliveryError.name;
  }
}

export interface ShardRuntimeDeps {
  rabbitmq: RabbitmqConfig;
  consumer: ConsumerConfig;
  batch: BatchBufferOptions;
  connection: ChannelSource;
  sink: Pick<FileSinkService, 'write' | 'syncFolder'>;
  dedupe: Dedupe;
  metrics: ConsumerMetrics;
}

const EMPTY = Buffer.alloc(0);

/** A shard may be without a consumer this long (its channel reopening) before /health says so. */
export const NO_CONSUMER_GRACE_MS = 5_000;
/** After a SHARDS_COUNT disagreement, the shard tries consuming again this often. */
export const SHARD_MISMATCH_RETRY_MS = 7_000;
/**
 * The size a shard's first consumer allows for: a message of one entry as large as the api's
 * default MAX_BODY_BYTES lets it be. Larger messages shrink the prefetch once seen.
 */
export const ASSUMED_LARGEST_MESSAGE = 1_048_576;
/**
 * The bytes of deliveries a shard holds at most (docs/consumer-memory.md): with its copies on the
 * way to a file, 5 shards of it keep the consumer under the contract's 256 MB. The api's messages
 * of small entries (a few KiB each) never come near it; its fullest ones (250 entries) get a
 * prefetch of about 18 to 22 once each entry is counted too (HELD_BYTES_PER_ENTRY).
 */
export const SHARD_HELD_BYTES = 4 * 1_048_576;
/**
 * What a decoded entry costs the heap while its shard holds it, beside its delivery's bytes: its
 * object and strings, its line, its slot in the batch, and for a keyed or redelivered one its claim
 * (about 570 bytes measured with requests of MAX_ENTRIES, keyed), rounded up for a margin: where
 * the sink runs its staging thread (small batches without SINK_FSYNC), that thread takes about 18 MB.
 * Without it, the api's messages of 250 entries (about 25 KiB) let 5 shards hold 200,000 entries:
 * 445 MB RSS with a key on each request (docs/consumer-memory.md).
 */
export const HELD_BYTES_PER_ENTRY = 640;

/**
 * One shard: decode each delivery (dead-letter what can never decode), hand its entries to the
 * worker pool, and ack the delivery once the last of its entries is in a complete file, on the
 * channel that delivered it. The channel's lifecycle lives in ShardChannel, the batching in the pool.
 */
export class ShardRuntime {
  private readonly logger: Logger;
  private readonly queue: string;
  private readonly channel: ShardChannel;
  private readonly pool: WorkerPool<PendingEntry>;
  /** The deliveries in hand (bytes, and a cost per entry), kept within SHARD_HELD_BYTES; it sets each consumer's prefetch. */
  private readonly window: DeliveryWindow;
  private stopped?: Promise<void>;
  private closed?: Promise<void>;
  /** Lookups under way (redelivered or keyed deliveries), which stop() lets finish before the drain. */
  private readonly admissions = new Set<Promise<void>>();
  /** Set while the apps disagree on SHARDS_COUNT (the shard does not consume); cleared by a good delivery. */
  private mismatch?: string;

  constructor(
    readonly shard: number,
    private readonly deps: ShardRuntimeDeps,
  ) {
    const { consumer } = deps;
    this.logger = new Logger(`Shard ${shard}`);
    this.queue = shardQueueName(deps.rabbitmq.queuePrefix, shard);
    this.pool = new WorkerPool<PendingEntry>(
      {
        ...DEFAULT_POOL_OPTIONS,
        shard,
        batch: deps.batch,
        // With every delivery the prefetch allows in hand, no more entries can arrive to fill
        // the batch: write what is there rather than wait for BATCH_FLUSH_MS.
        flushAtPendingAdds: () => this.window.fullHand,
        min: consumer.workersMin,
        max: consumer.workersMax,
        timeoutMs: consumer.workerTimeoutMs,
      },
      (job) => this.writeBatch(job),
      poolMetrics(deps.metrics, shard),
    );
    this.window = new DeliveryWindow({
      budget: SHARD_HELD_BYTES,
      bytesPerEntry: HELD_BYTES_PER_ENTRY,
      maxPrefetch: consumer.prefetch,
      assumedLargest: ASSUMED_LARGEST_MESSAGE,
      largeBytes: SHARD_MESSAGE_MAX_BYTES,
    });
    this.channel = new ShardChannel(
      deps.connection,
      { queue: this.queue, prefetch: () => this.window.startConsumer() },
      {
        delivery: (message, generation) => this.onDelivery(message, generation),
        closed: (generation) => this.onChannelClosed(generation),
      },
      this.logger,
    );
  }

  /** Whether the shard has a live consumer on its queue right now. */
  isConsuming(): boolean {
    return this.channel.isConsuming();
  }

  /**
   * What keeps this shard from being healthy, if anything: a SHARDS_COUNT disagreement, or no
   * consumer for longer than NO_CONSUMER_GRACE_MS.
   */
  problem(now = Date.now()): string | undefined {
    if (this.mismatch !== undefined) return this.mismatch;
    const ms = this.channel.msWithoutConsumer(now);
    if (ms <= NO_CONSUMER_GRACE_MS) return undefined;
    return `shard ${this.shard} has had no consumer on ${this.queue} for ${Math.floor(ms / 1000)} s`;
  }

  /** The shard's workers, live ones first, as `GET /workers` shows them. */
  workerHistory(): WorkerRecord[] {
    return this.pool.history();
  }

  /** Starts the workers and consuming; call once the sink is ready. */
  start(): void {
    this.pool.start();
    this.channel.open();
  }

  /** Stops consuming, then writes and acknowledges everything buffered. Idempotent. */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      await this.channel.stopConsuming();
      await Promise.all([...this.admissions]);
      await this.pool.drain();
    })();
    return this.stopped;
  }

  /** Retires the workers and closes the channel; anything unacknowledged goes back to the broker. Idempotent. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      this.pool.close();
      await this.channel.close();
    })();
    return this.closed;
  }

  private onDelivery(message: ConsumeMessage, generation: number): void {
    const bytes = message.content.length;
    const entries = this.decode(message, generation);
    const held = { bytes, entries: entries?.length ?? 0 };
    const verdict = this.window.received(held.bytes, held.entries);
    if (verdict === 'hold') this.channel.holdOff();
    else if (verdict === 'grow') this.channel.restart();
    if (entries === undefined) {
      this.release(held);
      return;
    }
    // A fitting delivery from a live consumer (not one still in hand from before a pause): the counts agree again.
    if (this.channel.isConsuming()) this.mismatch = undefined;
    const { dedupe } = this.deps;
    const delivery: Delivery = {
      message: { fields: message.fields, properties: message.properties, content: EMPTY },
      generation,
      exp: dedupe.expiresOf(message),
      held,
    };
    // A first delivery without a key cannot hold an entry already written: nothing to look up.
    if (!dedupe.needsLookup(message)) {
      this.write(delivery, entries);
      return;
    }
    const admitting = this.admit(delivery, entries).catch((error: unknown) => {
      this.logger.error(`looking up a delivery of ${this.queue}: ${describeError(error)}`);
      this.settled(delivery);
    });
    this.admissions.add(admitting);
    void admitting.finally(() => this.admissions.delete(admitting));
  }

  /**
   * The delivery's entries, or undefined when it has none to write: nacked back to its queue on a
   * SHARDS_COUNT disagreement, dead-lettered when it can never decode.
   */
  private decode(message: ConsumeMessage, generation: number): WireEntry[] | undefined {
    const ours = this.deps.rabbitmq.shardsCount;
    let sent: number | undefined;
    try {
      sent = readShardsCountHeader(message.properties.headers);
      if (sent !== undefined && sent !== ours) {
        this.onShardMismatch(message, generation, `a message was published with SHARDS_COUNT=${sent}`);
        return undefined;
      }
      return decodeShardPacket(message.content, this.shard, ours);
    } catch (error) {
      if (error instanceof ShardMismatchError) {
        this.onShardMismatch(
          message,
          generation,
          `${error.message} (its SHARDS_COUNT header: ${JSON.stringify(sent) ?? 'none'})`,
        );
        return undefined;
      }
      // Anything else the edge cannot decode (a PermanentMessageError) would fail the same way on
      // every redelivery.
      this.logger.error(`dead-lettering a delivery of ${this.queue}: ${describeError(error)}`);
      this.channel.nack(message, generation, false);
      this.deps.metrics.deadLettered.inc({ shard: String(this.shard) });
      return undefined;
    }
  }

  /**
   * A redelivered or keyed delivery: its entries already in complete files count as done; the
   * others are written, claimed in this process until then (see docs/exactly-once.md).
   */
  private async admit(delivery: Delivery, entries: WireEntry[]): Promise<void> {
    const { dedupe } = this.deps;
    const { write, done } = await dedupe.admit(entries.map((entry) => entry.id));
    if (done.length > 0 && write.length === 0) {
      // Whoever renamed those files may not have synced the folder since: no ack before a folder
      // fsync has. (With entries left to write, their own write fsyncs the folder before the ack.)
      await this.deps.sink.syncFolder(
        `finding ${done.length} entries of a delivery of ${this.queue} in complete files`,
      );
    }
    if (!this.channel.isCurrent(delivery.generation)) {
      // Its channel closed while it was looked up: it is redelivered, and written there.
      dedupe.settle(write, 'discarded');
      dedupe.release(delivery, 'lost');
      this.settled(delivery);
      return;
    }
    if (done.length > 0) {
      this.logger.log(
        logEvent(`skipped ${done.length} entries of a delivery of ${this.queue} already in complete files`, {
          event: 'entries_deduplicated',
          shard: this.shard,
          entries: done.length,
        }),
      );
    }
    // Each claimed id once, even if a delivery carried it twice.
    const claimed = new Set(write);
    this.write(
      delivery,
      entries.filter((entry) => claimed.delete(entry.id)),
      write,
    );
  }

  /**
   * Hands the entries to the pool; the delivery is acked once the last is in a complete file, on
   * the channel that delivered it (see ShardChannel.ack). `claimed`: ids held in the in-flight map.
   */
  private write(delivery: Delivery, entries: WireEntry[], claimed?: string[]): void {
    const { dedupe } = this.deps;
    this.pool
      .add(entries.map((entry) => ({ id: entry.id, line: encodeEntryLine(entry), delivery })))
      .then((outcome) => {
        const acked = outcome === 'written' && this.channel.ack(delivery.message, delivery.generation);
        // Not acked: it comes back, to any consumer; a copy waiting here looks the ledger up again.
        if (claimed !== undefined) dedupe.settle(claimed, acked ? 'written' : 'discarded');
        dedupe.release(delivery, acked ? 'settled' : 'lost');
      })
      .catch((error: unknown) =>
        this.logger.error(`acknowledging a delivery of ${this.queue}: ${describeError(error)}`),
      )
      .finally(() => this.settled(delivery));
  }

  /** The delivery is acked, rejected or given up: it no longer counts (once). */
  private settled(delivery: Delivery): void {
    const { held } = delivery;
    delivery.held = undefined;
    if (held !== undefined) this.release(held);
  }

  private release({ bytes, entries }: { bytes: number; entries: number }): void {
    if (bytes > SHARD_MESSAGE_MAX_BYTES) largeGarbage.handled(bytes);
    if (this.window.release(bytes, entries)) this.channel.resume();
  }

  /**
   * The apps disagree on SHARDS_COUNT: writing the entries would put them in the wrong shard's
   * files, and they are not poison either. The delivery goes back to its queue and the shard
   * stops consuming for a while; /health says why until a delivery fits again.
   */
  private onShardMismatch(message: ConsumeMessage, generation: number, detail: string): void {
    const ours = this.deps.rabbitmq.shardsCount;
    const reason = `SHARDS_COUNT disagreement on ${this.queue}: ${detail}, this consumer has SHARDS_COUNT=${ours}`;
    this.channel.nack(message, generation, true);
    if (this.mismatch === undefined) {
      this.logger.error(
        `${reason}; the delivery goes back to its queue and shard ${this.shard} stops consuming, ` +
          `trying again every ${SHARD_MISMATCH_RETRY_MS / 1000} s`,
      );
    } else {
      this.logger.debug(reason);
    }
    this.mismatch = reason;
    this.channel.pause(SHARD_MISMATCH_RETRY_MS);
  }

  /** Its deliveries are back in the queue: writing their buffered entries now would only duplicate them. */
  private onChannelClosed(generation: number): void {
    const dropped = this.pool.discard((entry) => entry.delivery.generation === generation);
    if (dropped > 0)
      this.logger.warn(`channel of ${this.queue} closed; ${dropped} buffered entries will be redelivered`);
  }

  /**
   * Writes the batch's entries of deliveries still on the open channel (the others are redelivered:
   * writing them would copy them). The ledger records the batch before its rename, and the commit
   * checks once more that no delivery's channel closed meanwhile: then the batch is not completed.
   */
  private async writeBatch(job: BatchJob<PendingEntry>): Promise<void> {
    const items = job.items.every((item) => this.channel.isCurrent(item.delivery.generation))
      ? job.items
      : job.items.filter((item) => this.channel.isCurrent(item.delivery.generation));
    if (items.length === 0) return;
    const lines: string[] = [];
    const ids: string[] = [];
    const holders: Delivery[] = [];
    let exp = 0;
    for (const { id, line, delivery } of items) {
      lines.push(line);
      ids.push(id);
      // A delivery's entries sit together, so comparing with the last one drops nearly every repeat
      // (one left after a put-back costs nothing: holding and checking are idempotent).
      if (holders[holders.length - 1] === delivery) continue;
      holders.push(delivery);
      if (delivery.exp > exp) exp = delivery.exp;
    }
    const file = await this.deps.sink.write(
      job.workerId,
      lines,
      {
        signal: job.signal,
        started: job.started,
        commit: () => {
          if (holders.some((delivery) => !this.channel.isCurrent(delivery.generation))) throw new StaleDeliveryError();
          job.commit();
        },
      },
      { ids, exp, holders },
    );
    const entries = items.length;
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
}

/** The pool's events as the shard's metrics. */
function poolMetrics(metrics: ConsumerMetrics, shard: number) {
  const labels = { shard: String(shard) };
  // One label object per worker, made once rather than spread for every batch.
  const workerLabels = new Map<string, { shard: string; worker: string }>();
  return {
    written: (items: readonly PendingEntry[], worker: string, ms: number) => {
      let byWorker = workerLabels.get(worker);
      if (byWorker === undefined) {
        byWorker = { ...labels, worker };
        workerLabels.set(worker, byWorker);
      }
      metrics.entriesWritten.inc(byWorker, items.length);
      metrics.batchWriteSeconds.observe(labels, ms / 1000);
    },
    resized: (size: number, { reason }: { reason?: string }) => {
      metrics.activeWorkers.set(labels, size);
      if (reason === 'timeout') metrics.workerTimeouts.inc(labels);
    },
    forgotten: (worker: string) => {
      workerLabels.delete(worker);
      metrics.entriesWritten.remove({ ...labels, worker });
    },
  };
}

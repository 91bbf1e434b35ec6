import { Logger } from '@nestjs/common';
import { EventEmitter } from 'node:events';
import type { CreateChannelOpts } from 'amqp-connection-manager';
import type { Channel, ConsumeMessage, Message } from 'amqplib';
import { Registry } from 'prom-client';
import type { ConsumerConfig, RabbitmqConfig } from '@app/config';
import { SHARDS_COUNT_HEADER, type WireEntry, encodeShardPacket } from '@app/contracts';
import { RECONNECT_SECONDS } from '@app/rabbitmq';
import { shardOf } from '@app/sharding';
import { ConsumerMetrics } from '../metrics/consumer.metrics';
import type { WriteControl } from '../worker-pool/worker-pool.types';
import type { ChannelSource } from './shard-channel';
import { NO_CONSUMER_GRACE_MS, SHARD_MISMATCH_RETRY_MS, ShardRuntime } from './shard-runtime';

const REOPEN_MS = RECONNECT_SECONDS * 1000 + 500;
const SHARDS = 1;

/** An amqplib channel as far as the runtime uses it; it records what was sent on it. */
class FakeChannel extends EventEmitter {
  readonly acked: number[] = [];
  readonly nacked: Array<{ tag: number; requeue: boolean }> = [];
  readonly cancelled: string[] = [];
  prefetched?: number;
  consumers = 0;
  closed = false;
  private onMessage?: (message: ConsumeMessage | null) => void;
  private nextTag = 0;

  constructor(readonly connection: object) {
    super();
  }

  async prefetch(count: number): Promise<void> {
    this.prefetched = count;
  }

  async consume(_queue: string, onMessage: (message: ConsumeMessage | null) => void) {
    this.onMessage = onMessage;
    this.consumers++;
    return { consumerTag: 'ctag' };
  }

  async cancel(consumerTag: string): Promise<void> {
    this.cancelled.push(consumerTag);
  }

  ack(message: Message): void {
    this.acked.push(message.fields.deliveryTag);
  }

  nack(message: Message, _allUpTo: boolean, requeue: boolean): void {
    this.nacked.push({ tag: message.fields.deliveryTag, requeue });
  }

  async close(): Promise<void> {
    if (this.closed) throw new Error('Channel closed');
    this.closeByBroker();
  }

  /** Delivers one message of `entries` (or raw bytes); returns its delivery tag. */
  deliver(entries: WireEntry[] | Buffer, shardsCount: number | null = SHARDS): number {
    const deliveryTag = ++this.nextTag;
    const content = Buffer.isBuffer(entries) ? entries : encodeShardPacket({ shard: 0, entries });
    this.onMessage?.({
      content,
      fields: { deliveryTag, redelivered: false, exchange: '', routingKey: 'q', consumerTag: 'ctag' },
      properties: { headers: shardsCount === null ? {} : { [SHARDS_COUNT_HEADER]: shardsCount } },
    } as unknown as ConsumeMessage);
    return deliveryTag;
  }

  /** The broker cancels the consumer (the queue was deleted, say). */
  cancelByBroker(): void {
    this.onMessage?.(null);
  }

  /** The broker closes the channel (a 406, say); the connection stays up. */
  closeByBroker(): void {
    this.closed = true;
    this.emit('close');
  }
}

/** BrokerConnection's part the channel uses: every `connect()` runs the latest setup on a new channel. */
class FakeConnection implements ChannelSource {
  readonly channels: FakeChannel[] = [];
  readonly wrappers: Array<{ setup: (channel: Channel) => unknown; closed: boolean }> = [];
  private readonly amqpConnection = {};

  createChannel(options: CreateChannelOpts) {
    const record = { setup: options.setup as (channel: Channel) => unknown, closed: false };
    this.wrappers.push(record);
    const wrapper = {
      on: () => wrapper,
      close: async () => {
        record.closed = true;
      },
    };
    return wrapper as never;
  }

  isConnected(): boolean {
    return true;
  }

  async ensureTopology(): Promise<void> {}

  /** Opens a channel for the newest wrapper, as amqp-connection-manager does on connect. */
  async connect(): Promise<FakeChannel> {
    const channel = new FakeChannel(this.amqpConnection);
    this.channels.push(channel);
    await this.wrappers[this.wrappers.length - 1].setup(channel as unknown as Channel);
    return channel;
  }
}

interface SinkCall {
  lines: readonly string[];
  control: WriteControl;
  finish(): Promise<void>;
}

/** A file sink whose writes each wait until the test finishes them. */
function fakeSink() {
  const calls: SinkCall[] = [];
  const write = (_workerId: string, lines: readonly string[], control: WriteControl) =>
    new Promise<string>((resolve) => {
      calls.push({
        lines,
        control,
        finish: async () => {
          control.commit();
          resolve(`file-${calls.length}`);
          await jest.advanceTimersByTimeAsync(0);
        },
      });
    });
  return { calls, write };
}

let nextId = 0;
function entries(count: number): WireEntry[] {
  return Array.from({ length: count }, () => ({ id: `id-${++nextId}`, timestamp: '2019-10-12T07:20:50.52Z' }));
}

function setup(options: { batchSize?: number; prefetch?: number; flushMs?: number; shardsCount?: number } = {}) {
  const connection = new FakeConnection();
  const sink = fakeSink();
  const runtime = new ShardRuntime(0, {
    rabbitmq: { queuePrefix: 'unit', shardsCount: options.shardsCount ?? SHARDS } as RabbitmqConfig,
    consumer: {
      prefetch: options.prefetch ?? 50,
      workersMin: 1,
      workersMax: 1,
      workerTimeoutMs: 60_000,
    } as ConsumerConfig,
    batch: { size: options.batchSize ?? 2, flushMs: options.flushMs ?? 1_000 },
    connection,
    sink,
    metrics: new ConsumerMetrics(new Registry()),
  });
  runtime.start();
  return { connection, sink, runtime };
}

describe('ShardRuntime with a fake channel: the ack rules', () => {
  beforeEach(() => {
    jest.useFakeTimers();
    for (const level of ['log', 'warn', 'error', 'debug'] as const) {
      jest.spyOn(Logger.prototype, level).mockImplementation();
    }
  });
  afterEach(() => {
    jest.useRealTimers();
    jest.restoreAllMocks();
  });

  it('acks a delivery only once the last of its entries is in a file, when it spans two batches', async () => {
    const { connection, sink, runtime } = setup({ batchSize: 2 });
    const channel = await connection.connect();
    const tag = channel.deliver(entries(3));
    expect(sink.calls.map((call) => call.lines.length)).toEqual([2]);

    await sink.calls[0].finish();
    expect(channel.acked).toEqual([]);

    await jest.advanceTimersByTimeAsync(1_000);
    expect(sink.calls.map((call) => call.lines.length)).toEqual([2, 1]);
    expect(channel.acked).toEqual([]);
    await sink.calls[1].finish();
    expect(channel.acked).toEqual([tag]);
    await runtime.close();
  });

  it('never acks on the channel of another generation: a delivery written after its channel closed stays unacked', async () => {
    const { connection, sink, runtime } = setup({ batchSize: 1 });
    const first = await connection.connect();
    first.deliver(entries(1));
    expect(sink.calls).toHaveLength(1);

    first.closeByBroker();
    await jest.advanceTimersByTimeAsync(REOPEN_MS);
    const second = await connection.connect();
    await sink.calls[0].finish();

    expect(first.acked).toEqual([]);
    expect(second.acked).toEqual([]);
    // The new channel's own deliveries are acked on it.
    const tag = second.deliver(entries(1));
    await sink.calls[1].finish();
    expect(second.acked).toEqual([tag]);
    await runtime.close();
  });

  it("discards a closed channel's buffered entries: the broker delivers them again", async () => {
    const { connection, sink, runtime } = setup({ batchSize: 10, flushMs: 1_000 });
    const first = await connection.connect();
    first.deliver(entries(3));
    first.closeByBroker();
    await jest.advanceTimersByTimeAsync(REOPEN_MS);
    const second = await connection.connect();
    const fresh = entries(2);
    const tag = second.deliver(fresh);
    await jest.advanceTimersByTimeAsync(1_000);

    expect(sink.calls).toHaveLength(1);
    expect(sink.calls[0].lines.map((line) => (JSON.parse(line) as WireEntry).id)).toEqual(fresh.map((e) => e.id));
    await sink.calls[0].finish();
    expect(second.acked).toEqual([tag]);
    await runtime.close();
  });

  it('reopens its channel after the broker cancels the consumer', async () => {
    const { connection, runtime } = setup();
    const first = await connection.connect();
    expect(runtime.isConsuming()).toBe(true);

    first.cancelByBroker();
    await jest.advanceTimersByTimeAsync(0);
    expect(first.closed).toBe(true);
    expect(runtime.isConsuming()).toBe(false);
    await jest.advanceTimersByTimeAsync(REOPEN_MS);
    expect(connection.wrappers).toHaveLength(2);
    expect(connection.wrappers[0].closed).toBe(true);
    await connection.connect();
    expect(runtime.isConsuming()).toBe(true);
    await runtime.close();
  });

  it('reopens a channel the broker closed while the connection stayed up', async () => {
    const { connection, runtime } = setup();
    const first = await connection.connect();
    first.closeByBroker();
    expect(runtime.isConsuming()).toBe(false);
    await jest.advanceTimersByTimeAsync(REOPEN_MS - 1);
    expect(connection.wrappers).toHaveLength(1);
    await jest.advanceTimersByTimeAsync(1);
    expect(connection.wrappers).toHaveLength(2);
    const second = await connection.connect();
    expect(second.prefetched).toBe(50);
    expect(runtime.isConsuming()).toBe(true);
    await runtime.close();
  });

  it('writes a partial batch at once when PREFETCH deliveries wait: no more can arrive', async () => {
    const { connection, sink, runtime } = setup({ batchSize: 100, prefetch: 3, flushMs: 60_000 });
    const channel = await connection.connect();
    channel.deliver(entries(1));
    channel.deliver(entries(1));
    expect(sink.calls).toHaveLength(0);
    channel.deliver(entries(1));
    expect(sink.calls.map((call) => call.lines.length)).toEqual([3]);
    await sink.calls[0].finish();
    expect(channel.acked).toEqual([1, 2, 3]);
    await runtime.close();
  });

  it('dead-letters a delivery that cannot be decoded, and acks nothing for it', async () => {
    const { connection, sink, runtime } = setup();
    const channel = await connection.connect();
    const tag = channel.deliver(Buffer.from('not json'));
    expect(channel.nacked).toEqual([{ tag, requeue: false }]);
    expect(sink.calls).toHaveLength(0);
    expect(channel.acked).toEqual([]);
    await runtime.close();
  });

  it('on stop, cancels the consumer, then writes and acks what is buffered', async () => {
    const { connection, sink, runtime } = setup({ batchSize: 10 });
    const channel = await connection.connect();
    const tag = channel.deliver(entries(2));
    const stopped = runtime.stop();
    await jest.advanceTimersByTimeAsync(0);
    expect(channel.cancelled).toEqual(['ctag']);
    expect(sink.calls.map((call) => call.lines.length)).toEqual([2]);
    await sink.calls[0].finish();
    await stopped;
    expect(channel.acked).toEqual([tag]);
    await runtime.close();
  });

  describe('a SHARDS_COUNT disagreement', () => {
    it('puts back a message sent with another count, stops consuming, says why, and tries again later', async () => {
      const { connection, sink, runtime } = setup();
      const channel = await connection.connect();
      const tag = channel.deliver(entries(1), 10);
      await jest.advanceTimersByTimeAsync(0);

      expect(channel.nacked).toEqual([{ tag, requeue: true }]);
      expect(channel.cancelled).toEqual(['ctag']);
      expect(runtime.isConsuming()).toBe(false);
      expect(runtime.problem()).toMatch(/SHARDS_COUNT=10.*SHARDS_COUNT=1/);
      expect(jest.mocked(Logger.prototype.error).mock.calls.flat().join('\n')).toMatch(
        /SHARDS_COUNT=10.*SHARDS_COUNT=1/,
      );
      await jest.advanceTimersByTimeAsync(SHARD_MISMATCH_RETRY_MS - 1);
      expect(sink.calls).toHaveLength(0);
      expect(channel.consumers).toBe(1);

      await jest.advanceTimersByTimeAsync(1);
      expect(channel.consumers).toBe(2);
      expect(runtime.isConsuming()).toBe(true);
      // Until a fitting delivery comes, the disagreement stands.
      expect(runtime.problem()).toMatch(/SHARDS_COUNT/);
      channel.deliver(entries(1));
      expect(runtime.problem()).toBeUndefined();
      await runtime.close();
    });

    it('puts back, and neither writes nor dead-letters, a message whose entry belongs to another shard', async () => {
      const { connection, sink, runtime } = setup({ shardsCount: 2 });
      const channel = await connection.connect();
      const odd = { id: 'odd', timestamp: '2019-10-12T08:10:51Z' };
      expect(shardOf(odd.timestamp, 2)).toBe(1);
      const tag = channel.deliver([odd], null);
      await jest.advanceTimersByTimeAsync(2_000);
      expect(channel.nacked).toEqual([{ tag, requeue: true }]);
      expect(sink.calls).toHaveLength(0);
      expect(runtime.isConsuming()).toBe(false);
      expect(runtime.problem()).toMatch(/belongs to shard 1 of 2, not 0.*SHARDS_COUNT=2/);
      await runtime.close();
    });
  });

  it('reports a shard without a consumer only after the 5 s grace', async () => {
    const { connection, runtime } = setup();
    const channel = await connection.connect();
    expect(runtime.problem()).toBeUndefined();
    channel.closeByBroker();
    await jest.advanceTimersByTimeAsync(NO_CONSUMER_GRACE_MS);
    expect(runtime.problem()).toBeUndefined();
    await jest.advanceTimersByTimeAsync(1_000);
    expect(runtime.problem()).toMatch(/shard 0 has had no consumer on unit\.shard\.0 for 6 s/);
    await connection.connect();
    expect(runtime.problem()).toBeUndefined();
    await runtime.close();
  });
});

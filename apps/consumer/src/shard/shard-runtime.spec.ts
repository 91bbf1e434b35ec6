import { Logger } from '@nestjs/common';
import { isDeepStrictEqual } from 'node:util';
import { type Counter, type Gauge, Registry } from 'prom-client';
import type { ConsumerConfig, RabbitmqConfig } from '@app/config';
import { IDEMPOTENCY_EXPIRES_HEADER, SHARDS_COUNT_HEADER, type WireEntry, encodeShardPacket } from '@app/contracts';
import type { LogEvent } from '@app/observability';
import { RECONNECT_SECONDS } from '@app/rabbitmq';
import { shardOf } from '@app/sharding';
import { type FakeChannel, FakeChannelManager, deferred } from '@app/testing';
import { type Admission, Dedupe, type DedupeTicket, type DeliveryFacts } from '../dedupe/dedupe';
import type { InFlightOutcome } from '../dedupe/in-flight-ids';
import type { BatchRecord } from '../file-sink/file-sink.service';
import { ConsumerMetrics } from '../metrics/consumer.metrics';
import type { WriteControl } from '../worker-pool/worker-pool.types';
import {
  NO_CONSUMER_GRACE_MS,
  HELD_BYTES_PER_ENTRY,
  SHARD_HELD_BYTES,
  SHARD_MISMATCH_RETRY_MS,
  ShardRuntime,
  StaleDeliveryError,
} from './shard-runtime';

const REOPEN_MS = RECONNECT_SECONDS * 1000 + 500;
const SHARDS = 1;

/** Delivers one message of `entries` (or raw bytes) on `channel`; returns its delivery tag. */
function deliver(
  channel: FakeChannel,
  entries: WireEntry[] | Buffer,
  shardsCount: number | null = SHARDS,
  { redelivered = false, headers = {} }: { redelivered?: boolean; headers?: Record<string, unknown> } = {},
): number {
  return channel.deliver({
    content: Buffer.isBuffer(entries) ? entries : encodeShardPacket({ shard: 0, entries }),
    fields: { redelivered },
    properties: { headers: { ...(shardsCount === null ? {} : { [SHARDS_COUNT_HEADER]: shardsCount }), ...headers } },
  });
}

interface SinkCall {
  lines: readonly string[];
  control: WriteControl;
  record?: BatchRecord;
  finish(): Promise<void>;
}

/** The dedupe as the runtime sees it: `inFiles` are the ids a lookup finds in complete files. */
class FakeDedupe extends Dedupe {
  readonly inFiles = new Set<string>();
  readonly lookedUp: string[][] = [];
  readonly settled: Array<{ ids: string[]; outcome: string }> = [];
  readonly released: string[] = [];

  override complete(): void {}

  override record(file: string): Promise<DedupeTicket> {
    return Promise.resolve({ file, segment: {} });
  }

  override abort(): Promise<void> {
    return Promise.resolve();
  }

  override needsLookup({ fields, properties }: DeliveryFacts): boolean {
    return fields.redelivered || properties.headers?.[IDEMPOTENCY_EXPIRES_HEADER] !== undefined;
  }

  override expiresOf({ properties }: DeliveryFacts): number {
    return Number(properties.headers?.[IDEMPOTENCY_EXPIRES_HEADER] ?? 0);
  }

  override async admit(ids: readonly string[]): Promise<Admission> {
    this.lookedUp.push([...ids]);
    return { write: ids.filter((id) => !this.inFiles.has(id)), done: ids.filter((id) => this.inFiles.has(id)) };
  }

  override settle(ids: Iterable<string>, outcome: InFlightOutcome): void {
    this.settled.push({ ids: [...ids], outcome });
  }

  override release(_holder: object, outcome: 'settled' | 'lost'): void {
    this.released.push(outcome);
  }
}

/** A file sink whose writes each wait until the test finishes them; its folder fsyncs wait while `folder.held`. */
function fakeSink() {
  const calls: SinkCall[] = [];
  const folder = { held: false, syncs: [] as string[], release: () => undefined as void };
  let released = Promise.resolve();
  const holdFolder = () => {
    folder.held = true;
    released = new Promise<void>((resolve) => (folder.release = resolve));
  };
  const syncFolder = async (what: string) => {
    folder.syncs.push(what);
    if (folder.held) await released;
  };
  const write = (_workerId: string, lines: readonly string[], control: WriteControl, record?: BatchRecord) =>
    new Promise<string>((resolve, reject) => {
      calls.push({
        lines,
        control,
        record,
        // Like the real sink, a commit that throws fails the write (and the batch does not appear).
        finish: async () => {
          try {
            control.commit();
          } catch (error) {
            const failure = error instanceof Error ? error : new Error(String(error));
            reject(failure);
            await jest.advanceTimersByTimeAsync(0);
            throw failure;
          }
          resolve(`file-${calls.length}`);
          await jest.advanceTimersByTimeAsync(0);
        },
      });
    });
  return { calls, write, syncFolder, folder, holdFolder };
}

let nextId = 0;
function entries(count: number): WireEntry[] {
  return Array.from({ length: count }, () => ({ id: `id-${++nextId}`, timestamp: '2019-10-12T07:20:50.52Z' }));
}

function setup(options: { batchSize?: number; prefetch?: number; flushMs?: number; shardsCount?: number } = {}) {
  const connection = new FakeChannelManager();
  const sink = fakeSink();
  const dedupe = new FakeDedupe();
  const metrics = new ConsumerMetrics(new Registry());
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
    dedupe,
    metrics,
  });
  runtime.start();
  return { connection, sink, dedupe, metrics, runtime };
}

/** The messages logged at `level` (by any logger), an event's text for a logEvent. */
function logged(level: 'log' | 'warn' | 'error' | 'debug'): string[] {
  return jest
    .mocked(Logger.prototype[level])
    .mock.calls.map(([message]) => (isLogEvent(message) ? message.text : String(message)));
}

function isLogEvent(message: unknown): message is LogEvent {
  return typeof message === 'object' && message !== null && 'text' in message;
}

/** The ids of the lines of one sink write. */
function idsOf(call: SinkCall): string[] {
  return call.lines.map((line) => (JSON.parse(line) as WireEntry).id);
}

/** A metric's value for shard 0 (and `labels`), 0 when it has none. */
async function valueOf(metric: Counter | Gauge, labels: Record<string, string> = {}): Promise<number> {
  const { values } = await metric.get();
  const match = values.find((value) => isDeepStrictEqual(value.labels, { shard: '0', ...labels }));
  return match?.value ?? 0;
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
    const tag = deliver(channel, entries(3));
    expect(sink.calls.map((call) => call.lines.length)).toEqual([2]);

    await sink.calls[0].finish();
    expect(channel.acked).toEqual([]);

    await jest.advanceTimersByTimeAsync(1_000);
    expect(sink.calls.map((call) => call.lines.length)).toEqual([2, 1]);
    expect(channel.acked).toEqual([]);
    await sink.calls[1].finish();
    expect(channel.acked).toEqual([tag]);
    // The contract's log of each batch: worker, shard, entry count, file.
    const log = jest.mocked(Logger.prototype.log).mock;
    expect(log.calls.flat().filter(isLogEvent)).toEqual([
      expect.objectContaining({
        text: 'worker 0-1 wrote 2 entries to file-1',
        fields: { event: 'batch_written', worker: '0-1', shard: 0, entries: 2, file: 'file-1' },
      }),
      expect.objectContaining({
        text: 'worker 0-1 wrote 1 entry to file-2',
        fields: { event: 'batch_written', worker: '0-1', shard: 0, entries: 1, file: 'file-2' },
      }),
    ]);
    // Logged as the shard's.
    expect(log.contexts[log.calls.findIndex(([message]) => isLogEvent(message))]).toMatchObject({ context: 'Shard 0' });
    await runtime.close();
  });

  it('does not complete a batch whose channel closed before its commit: it is redelivered and written elsewhere', async () => {
    const { connection, sink, dedupe, runtime } = setup({ batchSize: 1 });
    const first = await connection.connect();
    deliver(first, entries(1));
    expect(sink.calls).toHaveLength(1);

    first.closeByBroker();
    await jest.advanceTimersByTimeAsync(REOPEN_MS);
    const second = await connection.connect();
    await expect(sink.calls[0].finish()).rejects.toMatchObject({
      constructor: StaleDeliveryError,
      name: 'StaleDeliveryError',
    });
    // The pool's log line is all an operator sees of it.
    expect(logged('error').join('\n')).toMatch(/belongs to a closed channel; not completing the batch/);
    // Its entry went back to the pool, which drops it on the retry instead of writing it.
    await jest.advanceTimersByTimeAsync(1_000);
    expect(sink.calls).toHaveLength(1);
    expect(first.acked).toEqual([]);
    expect(second.acked).toEqual([]);
    // The new channel's own deliveries are acked on it.
    const tag = deliver(second, entries(1));
    await sink.calls[1].finish();
    expect(second.acked).toEqual([tag]);
    expect(dedupe.released).toEqual(['lost', 'settled']);
    await runtime.close();
  });

  it('records each batch with its ids, the latest key expiry and its deliveries', async () => {
    const { connection, sink, runtime } = setup({ batchSize: 3 });
    const channel = await connection.connect();
    const [a, b] = [entries(2), entries(1)];
    deliver(channel, a);
    deliver(channel, b, SHARDS, { headers: { [IDEMPOTENCY_EXPIRES_HEADER]: 1_900_000_000_000 } });
    await jest.advanceTimersByTimeAsync(0);
    expect(sink.calls[0].record?.ids).toEqual([...a, ...b].map((entry) => entry.id));
    expect(sink.calls[0].record?.exp).toBe(1_900_000_000_000);
    expect(sink.calls[0].record?.holders).toHaveLength(2);
    await sink.calls[0].finish();
    expect(channel.acked).toEqual([1, 2]);
    await runtime.close();
  });

  it('looks up only redelivered or keyed deliveries; entries already in files are not written but count for the ack', async () => {
    const { connection, sink, dedupe, runtime } = setup({ batchSize: 10, flushMs: 100 });
    const channel = await connection.connect();
    const fresh = entries(2);
    const again = entries(3);
    dedupe.inFiles.add(again[0].id).add(again[2].id);
    deliver(channel, fresh);
    const tag = deliver(channel, again, SHARDS, { redelivered: true });
    await jest.advanceTimersByTimeAsync(100);
    expect(dedupe.lookedUp).toEqual([again.map((entry) => entry.id)]);
    const written = sink.calls.flatMap((call) => call.lines.map((line) => (JSON.parse(line) as WireEntry).id));
    expect(written).toEqual([...fresh, again[1]].map((entry) => entry.id));
    await sink.calls[0].finish();
    expect(channel.acked).toEqual([1, tag]);
    expect(dedupe.settled).toEqual([{ ids: [again[1].id], outcome: 'written' }]);
    // Its remaining entry's write fsyncs the folder before the ack: no folder fsync of its own.
    expect(sink.folder.syncs).toEqual([]);
    expect(jest.mocked(Logger.prototype.log).mock.calls.flat().filter(isLogEvent)).toContainEqual(
      expect.objectContaining({
        text: 'skipped 2 entries of a delivery of unit.shard.0 already in complete files',
        fields: { event: 'entries_deduplicated', shard: 0, entries: 2 },
      }),
    );
    // A redelivery with nothing in files skips nothing, and says nothing about it.
    deliver(channel, entries(1), SHARDS, { redelivered: true });
    await jest.advanceTimersByTimeAsync(100);
    expect(logged('log').filter((line) => line.startsWith('skipped'))).toHaveLength(1);
    await runtime.close();
  });

  it('acks, writing nothing, a repeated delivery whose entries are all in files, once a folder fsync after the lookup is done', async () => {
    const { connection, sink, dedupe, runtime } = setup();
    const channel = await connection.connect();
    const repeat = entries(2);
    for (const entry of repeat) dedupe.inFiles.add(entry.id);
    sink.holdFolder();
    const tag = deliver(channel, repeat, SHARDS, { headers: { [IDEMPOTENCY_EXPIRES_HEADER]: 1 } });
    await jest.advanceTimersByTimeAsync(0);
    // Whoever renamed those files may not have synced the folder yet: a power loss could take their names.
    expect(sink.folder.syncs).toEqual(['finding 2 entries of a delivery of unit.shard.0 in complete files']);
    expect(channel.acked).toEqual([]);
    sink.folder.release();
    await jest.advanceTimersByTimeAsync(0);
    expect(sink.calls).toHaveLength(0);
    expect(channel.acked).toEqual([tag]);
    // A repeat with nothing in files waits for no folder fsync.
    deliver(channel, entries(1), SHARDS, { headers: { [IDEMPOTENCY_EXPIRES_HEADER]: 1 } });
    await jest.advanceTimersByTimeAsync(0);
    expect(sink.folder.syncs).toHaveLength(1);
    await runtime.close();
  });

  it("discards a closed channel's buffered entries: the broker delivers them again", async () => {
    const { connection, sink, runtime } = setup({ batchSize: 10, flushMs: 1_000 });
    const first = await connection.connect();
    deliver(first, entries(3));
    first.closeByBroker();
    await jest.advanceTimersByTimeAsync(REOPEN_MS);
    const second = await connection.connect();
    const fresh = entries(2);
    const tag = deliver(second, fresh);
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
    // A new channel's first consumer allows for the largest messages the api sends (4 of 1 MiB
    // in SHARD_HELD_BYTES) until its deliveries show them smaller (DeliveryWindow).
    expect(second.prefetched).toBe(4);
    expect(runtime.isConsuming()).toBe(true);
    await runtime.close();
  });

  describe('the bytes it holds (DeliveryWindow): RabbitMQ counts deliveries, not bytes', () => {
    /** One entry whose delivery is about `share` of SHARD_HELD_BYTES. */
    const large = (share: number): WireEntry[] =>
      entries(1).map((entry) => ({ ...entry, value: 'x'.repeat(Math.floor(SHARD_HELD_BYTES * share)) }));

    it('starts with a prefetch for the largest messages the api sends, and restarts with PREFETCH once its deliveries prove small', async () => {
      const { connection, runtime } = setup({ prefetch: 50 });
      const channel = await connection.connect();
      expect(channel.prefetched).toBe(4);
      for (let i = 0; i < 4; i++) deliver(channel, entries(1));
      await jest.advanceTimersByTimeAsync(0);
      expect(channel.cancelled).toEqual(['ctag-1']);
      expect(channel.consumers).toBe(2);
      expect(channel.prefetched).toBe(50);
      expect(runtime.isConsuming()).toBe(true);
      await runtime.close();
    });

    it('holds its consumer off while it holds more than SHARD_HELD_BYTES, until half is written', async () => {
      const { connection, sink, runtime } = setup({ batchSize: 1 });
      const channel = await connection.connect();
      deliver(channel, large(0.2));
      expect(channel.cancelled).toEqual([]);
      // Four of these would be 1.6 times the budget: held off at once.
      deliver(channel, large(0.4));
      expect(channel.cancelled).toEqual(['ctag-1']);
      expect(runtime.isConsuming()).toBe(false);
      // Busy, not without a consumer: /health stays green however long the writes take.
      expect(runtime.problem(Date.now() + 60_000)).toBeUndefined();
      // Sent before the cancel arrived: counted all the same (1.0 of the budget held).
      deliver(channel, large(0.4));
      await sink.calls[0].finish();
      expect(channel.consumers).toBe(1);
      await sink.calls[1].finish();
      // 0.4 held: under half the budget.
      await jest.advanceTimersByTimeAsync(0);
      expect(channel.consumers).toBe(2);
      // Room for one more of 0.4 beside the 0.4 held.
      expect(channel.prefetched).toBe(1);
      expect(runtime.isConsuming()).toBe(true);
      await sink.calls[2].finish();
      expect(channel.acked).toEqual([1, 2, 3]);
      await runtime.close();
    });

    it('writes a partial batch once as many deliveries as its prefetch allows are in hand', async () => {
      const { connection, sink, runtime } = setup({ batchSize: 5, flushMs: 60_000 });
      const channel = await connection.connect();
      for (let i = 0; i < 3; i++) deliver(channel, large(0.24));
      expect(sink.calls).toHaveLength(0);
      // The fourth: the prefetch of 4 the first consumer kept is in hand, and none can come.
      deliver(channel, large(0.24));
      expect(sink.calls.map((call) => call.lines.length)).toEqual([4]);
      await runtime.close();
    });

    it("counts what each entry costs beside the bytes: the api's messages of 250 small entries hold it off", async () => {
      const { connection, sink, runtime } = setup({ batchSize: 1_000_000, flushMs: 60_000 });
      const channel = await connection.connect();
      const message = (): WireEntry[] => entries(250);
      const cost = encodeShardPacket({ shard: 0, entries: message() }).length + 250 * HELD_BYTES_PER_ENTRY;
      // Far under the budget by their bytes (about 20 KiB each), over it by what they hold.
      const overBudget = Math.floor(SHARD_HELD_BYTES / cost) + 1;
      expect(overBudget * encodeShardPacket({ shard: 0, entries: message() }).length).toBeLessThan(
        SHARD_HELD_BYTES / 2,
      );
      for (let i = 0; i < overBudget; i++) deliver(channel, message());
      await jest.advanceTimersByTimeAsync(0);
      expect(runtime.isConsuming()).toBe(false);
      expect(sink.calls).toHaveLength(1);
      await runtime.close();
    });

    it('counts a dead-lettered delivery out at once', async () => {
      const { connection, runtime } = setup();
      const channel = await connection.connect();
      deliver(channel, Buffer.alloc(SHARD_HELD_BYTES + 1, 'x'));
      expect(channel.cancelled).toEqual(['ctag-1']);
      await jest.advanceTimersByTimeAsync(0);
      expect(channel.nacked).toHaveLength(1);
      expect(channel.consumers).toBe(2);
      await runtime.close();
    });
  });

  it('writes a partial batch at once when PREFETCH deliveries wait: no more can arrive', async () => {
    const { connection, sink, runtime } = setup({ batchSize: 100, prefetch: 3, flushMs: 60_000 });
    const channel = await connection.connect();
    deliver(channel, entries(1));
    deliver(channel, entries(1));
    expect(sink.calls).toHaveLength(0);
    deliver(channel, entries(1));
    expect(sink.calls.map((call) => call.lines.length)).toEqual([3]);
    await sink.calls[0].finish();
    expect(channel.acked).toEqual([1, 2, 3]);
    await runtime.close();
  });

  it('dead-letters a delivery that cannot be decoded, and acks nothing for it', async () => {
    const { connection, sink, metrics, runtime } = setup();
    const channel = await connection.connect();
    const tag = deliver(channel, Buffer.from('not json'));
    expect(channel.nacked).toEqual([{ tag, allUpTo: false, requeue: false }]);
    expect(sink.calls).toHaveLength(0);
    expect(channel.acked).toEqual([]);
    expect(logged('error')).toEqual(['dead-lettering a delivery of unit.shard.0: payload is not JSON']);
    expect(await valueOf(metrics.deadLettered)).toBe(1);
    await runtime.close();
  });

  it.each([5.5, 0, -1, 'five', '', null, true, { count: 1 }, [1]])(
    'dead-letters a delivery whose SHARDS_COUNT header is %p, not a count, and keeps consuming',
    async (header) => {
      const { connection, sink, metrics, runtime } = setup({ batchSize: 1 });
      const channel = await connection.connect();
      const tag = deliver(channel, entries(1), null, { headers: { [SHARDS_COUNT_HEADER]: header } });
      expect(channel.nacked).toEqual([{ tag, allUpTo: false, requeue: false }]);
      expect(logged('error')).toEqual([
        `dead-lettering a delivery of unit.shard.0: its ${SHARDS_COUNT_HEADER} header is not a whole number of shards: ${JSON.stringify(header)}`,
      ]);
      expect(await valueOf(metrics.deadLettered)).toBe(1);
      expect(runtime.isConsuming()).toBe(true);
      expect(runtime.problem()).toBeUndefined();
      // The shard is not blocked: the next delivery is written.
      deliver(channel, entries(1));
      expect(sink.calls).toHaveLength(1);
      await runtime.close();
    },
  );

  it('reads a SHARDS_COUNT header sent as a numeric string, as other AMQP clients may', async () => {
    const { connection, sink, runtime } = setup({ batchSize: 1 });
    const channel = await connection.connect();
    deliver(channel, entries(1), null, { headers: { [SHARDS_COUNT_HEADER]: String(SHARDS) } });
    expect(sink.calls).toHaveLength(1);
    expect(channel.nacked).toEqual([]);
    await runtime.close();
  });

  it('on stop, cancels the consumer, then writes and acks what is buffered', async () => {
    const { connection, sink, runtime } = setup({ batchSize: 10 });
    const channel = await connection.connect();
    const tag = deliver(channel, entries(2));
    const stopped = runtime.stop();
    await jest.advanceTimersByTimeAsync(0);
    expect(channel.cancelled).toEqual(['ctag-1']);
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
      const tag = deliver(channel, entries(1), 10);
      await jest.advanceTimersByTimeAsync(0);

      expect(channel.nacked).toEqual([{ tag, allUpTo: false, requeue: true }]);
      expect(channel.cancelled).toEqual(['ctag-1']);
      expect(runtime.isConsuming()).toBe(false);
      expect(runtime.problem()).toMatch(/SHARDS_COUNT=10.*SHARDS_COUNT=1/);
      expect(logged('error')).toEqual([
        'SHARDS_COUNT disagreement on unit.shard.0: a message was published with SHARDS_COUNT=10, this consumer ' +
          'has SHARDS_COUNT=1; the delivery goes back to its queue and shard 0 stops consuming, trying again every 7 s',
      ]);
      await jest.advanceTimersByTimeAsync(SHARD_MISMATCH_RETRY_MS - 1);
      expect(sink.calls).toHaveLength(0);
      expect(channel.consumers).toBe(1);

      await jest.advanceTimersByTimeAsync(1);
      expect(channel.consumers).toBe(2);
      expect(runtime.isConsuming()).toBe(true);
      // Until a fitting delivery comes, the disagreement stands.
      expect(runtime.problem()).toMatch(/SHARDS_COUNT/);
      deliver(channel, entries(1));
      expect(runtime.problem()).toBeUndefined();
      await runtime.close();
    });

    it('puts back, and neither writes nor dead-letters, a message whose entry belongs to another shard', async () => {
      const { connection, sink, runtime } = setup({ shardsCount: 2 });
      const channel = await connection.connect();
      const odd = { id: 'odd', timestamp: '2019-10-12T08:10:51Z' };
      expect(shardOf(odd.timestamp, 2)).toBe(1);
      const tag = deliver(channel, [odd], null);
      await jest.advanceTimersByTimeAsync(2_000);
      expect(channel.nacked).toEqual([{ tag, allUpTo: false, requeue: true }]);
      expect(sink.calls).toHaveLength(0);
      expect(runtime.isConsuming()).toBe(false);
      expect(runtime.problem()).toMatch(
        /belongs to shard 1 of 2, not 0.*\(its SHARDS_COUNT header: none\), this consumer has SHARDS_COUNT=2$/,
      );
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
  it('logs a lasting SHARDS_COUNT disagreement once at error level, then at debug', async () => {
    const { connection, runtime } = setup();
    const channel = await connection.connect();
    deliver(channel, entries(1), 10);
    // Deliveries the broker sent before the cancel still arrive.
    const tag = deliver(channel, entries(1), 3);
    expect(channel.nacked.at(-1)).toEqual({ tag, allUpTo: false, requeue: true });
    expect(logged('error')).toHaveLength(1);
    expect(logged('debug')).toEqual([
      'SHARDS_COUNT disagreement on unit.shard.0: a message was published with SHARDS_COUNT=3, this consumer has SHARDS_COUNT=1',
    ]);
    expect(runtime.problem()).toMatch(/SHARDS_COUNT=3/);
    await runtime.close();
  });

  it('a fitting delivery still in hand from before the pause does not end a SHARDS_COUNT disagreement', async () => {
    const { connection, runtime } = setup();
    const channel = await connection.connect();
    deliver(channel, entries(1), 10);
    deliver(channel, entries(1));
    expect(runtime.problem()).toMatch(/SHARDS_COUNT=10/);
    await runtime.close();
  });

  it('writes a delivery that has no headers at all', async () => {
    const { connection, sink, runtime } = setup({ batchSize: 1 });
    const channel = await connection.connect();
    const [entry] = entries(1);
    const tag = channel.deliver({ content: encodeShardPacket({ shard: 0, entries: [entry] }), properties: {} });
    expect(sink.calls.map(idsOf)).toEqual([[entry.id]]);
    await sink.calls[0].finish();
    expect(channel.acked).toEqual([tag]);
    await runtime.close();
  });

  it('records the latest key expiry of a batch, whatever the order of its deliveries', async () => {
    const { connection, sink, runtime } = setup({ batchSize: 2 });
    const channel = await connection.connect();
    deliver(channel, entries(1), SHARDS, { headers: { [IDEMPOTENCY_EXPIRES_HEADER]: 1_900_000_000_000 } });
    deliver(channel, entries(1), SHARDS, { headers: { [IDEMPOTENCY_EXPIRES_HEADER]: 1_800_000_000_000 } });
    await jest.advanceTimersByTimeAsync(0);
    expect(sink.calls[0].record?.exp).toBe(1_900_000_000_000);
    await runtime.close();
  });

  it("a closed channel's entries take no room in the next file: it holds BATCH_SIZE of the new channel's", async () => {
    const { connection, sink, runtime } = setup({ batchSize: 4, flushMs: 60_000 });
    const first = await connection.connect();
    deliver(first, entries(2));
    first.closeByBroker();
    expect(logged('warn')).toEqual(['channel of unit.shard.0 closed; 2 buffered entries will be redelivered']);
    await jest.advanceTimersByTimeAsync(REOPEN_MS);
    const second = await connection.connect();
    const fresh = entries(4);
    const tag = deliver(second, fresh);
    expect(sink.calls.map(idsOf)).toEqual([fresh.map((entry) => entry.id)]);
    await sink.calls[0].finish();
    expect(second.acked).toEqual([tag]);
    // Nothing buffered when this one closes: nothing to say about it.
    second.closeByBroker();
    expect(logged('warn').filter((line) => line.includes('buffered entries'))).toHaveLength(1);
    await runtime.close();
  });

  it("after a batch is taken back from a closed channel, the next file holds only the open channel's entries", async () => {
    const { connection, sink, runtime } = setup({ batchSize: 2, flushMs: 1_000 });
    const first = await connection.connect();
    deliver(first, entries(1));
    await jest.advanceTimersByTimeAsync(1_000);
    expect(sink.calls).toHaveLength(1);
    first.closeByBroker();
    await jest.advanceTimersByTimeAsync(REOPEN_MS);
    const second = await connection.connect();
    const fresh = entries(1);
    const tag = deliver(second, fresh);
    // The first batch fails at its commit and goes back to the buffer, before the fresh entry.
    await expect(sink.calls[0].finish()).rejects.toBeInstanceOf(StaleDeliveryError);
    await jest.advanceTimersByTimeAsync(1_000);
    expect(sink.calls.slice(1).map(idsOf)).toEqual([[fresh[0].id]]);
    expect(second.acked).toEqual([]);
    await sink.calls[1].finish();
    expect(second.acked).toEqual([tag]);
    await runtime.close();
  });

  it('close() acks nothing still buffered: it goes back to the broker; a second close() is the first', async () => {
    const { connection, sink, runtime } = setup({ batchSize: 10 });
    const channel = await connection.connect();
    deliver(channel, entries(2));
    const closing = runtime.close();
    expect(runtime.close()).toBe(closing);
    await closing;
    await jest.advanceTimersByTimeAsync(1_000);
    expect(sink.calls).toHaveLength(0);
    expect(channel.acked).toEqual([]);
    expect(connection.wrappers[0].closed).toBe(true);
    expect(runtime.workerHistory()).toEqual([{ id: '0-1', processed: 0, state: 'retired', reason: 'shutdown' }]);
  });

  it('shows each worker with the entries it wrote', async () => {
    const { connection, sink, runtime } = setup({ batchSize: 3 });
    const channel = await connection.connect();
    deliver(channel, entries(3));
    await sink.calls[0].finish();
    expect(runtime.workerHistory()).toEqual([{ id: '0-1', processed: 3, state: 'active', reason: null }]);
    await runtime.close();
  });

  it("counts each worker's entries, the write time in seconds, the live workers and the timeouts of the shard", async () => {
    const { connection, sink, metrics, runtime } = setup({ batchSize: 2 });
    const channel = await connection.connect();
    expect(await valueOf(metrics.activeWorkers)).toBe(1);
    deliver(channel, entries(2));
    await jest.advanceTimersByTimeAsync(250);
    await sink.calls[0].finish();
    expect(await valueOf(metrics.entriesWritten, { worker: '0-1' })).toBe(2);
    const histogram = await metrics.batchWriteSeconds.get();
    const sum = histogram.values.find((value) => value.metricName === 'consumer_batch_write_seconds_sum');
    expect(sum).toMatchObject({ labels: { shard: '0' }, value: 0.25 });
    expect(await valueOf(metrics.workerTimeouts)).toBe(0);

    // A write that outlives WORKER_TIMEOUT_MS: its worker is replaced.
    deliver(channel, entries(2));
    await jest.advanceTimersByTimeAsync(60_000);
    expect(await valueOf(metrics.workerTimeouts)).toBe(1);
    expect(await valueOf(metrics.activeWorkers)).toBe(1);
    await runtime.close();
    expect(await valueOf(metrics.activeWorkers)).toBe(0);
    expect(await valueOf(metrics.workerTimeouts)).toBe(1);
  });

  it("drops a worker's entry count once the history forgets the worker", async () => {
    const { connection, sink, metrics, runtime } = setup({ batchSize: 1 });
    const channel = await connection.connect();
    deliver(channel, entries(1));
    await sink.calls[0].finish();
    expect(await valueOf(metrics.entriesWritten, { worker: '0-1' })).toBe(1);
    // Every later write hangs: each worker times out in turn; the history keeps the last 100 retired.
    deliver(channel, entries(1));
    for (let retired = 0; retired < 100; retired++) await jest.advanceTimersByTimeAsync(60_000);
    expect(runtime.workerHistory().map((worker) => worker.id)).toContain('0-1');
    expect(await valueOf(metrics.entriesWritten, { worker: '0-1' })).toBe(1);
    await jest.advanceTimersByTimeAsync(60_000);
    expect(runtime.workerHistory().map((worker) => worker.id)).not.toContain('0-1');
    expect((await metrics.entriesWritten.get()).values).toEqual([]);
    await runtime.close();
  });

  describe('a delivery that needs a lookup', () => {
    it('stop() lets a lookup under way finish, then writes and acks its entries', async () => {
      const { connection, sink, dedupe, runtime } = setup({ batchSize: 10 });
      const lookup = deferred();
      const admit = dedupe.admit.bind(dedupe);
      jest.spyOn(dedupe, 'admit').mockImplementationOnce(async (ids) => {
        await lookup.promise;
        return admit(ids);
      });
      const channel = await connection.connect();
      const tag = deliver(channel, entries(2), SHARDS, { redelivered: true });
      let stopped = false;
      const stopping = runtime.stop().then(() => (stopped = true));
      await jest.advanceTimersByTimeAsync(0);
      expect(channel.cancelled).toEqual(['ctag-1']);
      expect(stopped).toBe(false);
      lookup.resolve();
      await jest.advanceTimersByTimeAsync(0);
      expect(sink.calls.map((call) => call.lines.length)).toEqual([2]);
      expect(stopped).toBe(false);
      await sink.calls[0].finish();
      await stopping;
      expect(channel.acked).toEqual([tag]);
      await runtime.close();
    });

    it('buffers nothing of a delivery whose channel closed during its lookup: it is redelivered', async () => {
      const { connection, sink, dedupe, runtime } = setup({ batchSize: 2, flushMs: 60_000 });
      const lookup = deferred();
      const admit = dedupe.admit.bind(dedupe);
      jest.spyOn(dedupe, 'admit').mockImplementationOnce(async (ids) => {
        await lookup.promise;
        return admit(ids);
      });
      const first = await connection.connect();
      const [again] = entries(1);
      deliver(first, [again], SHARDS, { redelivered: true });
      first.closeByBroker();
      lookup.resolve();
      await jest.advanceTimersByTimeAsync(0);
      expect(dedupe.settled).toEqual([{ ids: [again.id], outcome: 'discarded' }]);
      expect(dedupe.released).toEqual(['lost']);
      // The next channel's file holds BATCH_SIZE of its own entries, none of the closed one's.
      await jest.advanceTimersByTimeAsync(REOPEN_MS);
      const second = await connection.connect();
      const fresh = entries(2);
      deliver(second, fresh);
      expect(sink.calls.map(idsOf)).toEqual([fresh.map((entry) => entry.id)]);
      await runtime.close();
    });

    it('gives back the claim on the ids of a looked-up delivery whose channel closed before its write', async () => {
      const { connection, sink, dedupe, runtime } = setup({ batchSize: 10 });
      const channel = await connection.connect();
      const again = entries(2);
      deliver(channel, again, SHARDS, { redelivered: true });
      await jest.advanceTimersByTimeAsync(0);
      channel.closeByBroker();
      await jest.advanceTimersByTimeAsync(0);
      expect(sink.calls).toHaveLength(0);
      expect(dedupe.settled).toEqual([{ ids: again.map((entry) => entry.id), outcome: 'discarded' }]);
      expect(dedupe.released).toEqual(['lost']);
      await runtime.close();
    });

    it('says so when a lookup fails', async () => {
      const { connection, sink, dedupe, runtime } = setup({ batchSize: 1 });
      jest.spyOn(dedupe, 'admit').mockRejectedValueOnce(new Error('ledger unreadable'));
      const channel = await connection.connect();
      deliver(channel, entries(1), SHARDS, { redelivered: true });
      await jest.advanceTimersByTimeAsync(0);
      expect(sink.calls).toHaveLength(0);
      expect(logged('error')).toEqual(['looking up a delivery of unit.shard.0: ledger unreadable']);
      await runtime.close();
    });
  });

  it('says so when the bookkeeping after an ack fails', async () => {
    const { connection, sink, dedupe, runtime } = setup({ batchSize: 1 });
    jest.spyOn(dedupe, 'release').mockImplementationOnce(() => {
      throw new Error('no such holder');
    });
    const channel = await connection.connect();
    const tag = deliver(channel, entries(1));
    await sink.calls[0].finish();
    expect(channel.acked).toEqual([tag]);
    expect(logged('error')).toEqual(['acknowledging a delivery of unit.shard.0: no such holder']);
    await runtime.close();
  });
});

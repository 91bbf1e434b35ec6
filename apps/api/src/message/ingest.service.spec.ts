import { Registry } from 'prom-client';
import { ApiMetrics } from '../metrics/api.metrics';
import type { RabbitmqConfig } from '@app/config';
import type { CreateEntryDto, WireEntry } from '@app/contracts';
import { shardOf } from '@app/sharding';
import { entryTimestamp } from '@app/testing';
import { BrokerUnavailableError, type ShardPublisher } from '../broker/shard-publisher.service';
import { IngestService } from './ingest.service';

const SHARDS = 5;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** A ShardPublisher that records every publish and settles it only when the test says so. */
class FakePublisher {
  readonly calls: { shard: number; entries: WireEntry[]; confirm: () => void; fail: (error: Error) => void }[] = [];

  publish(shard: number, entries: WireEntry[]): Promise<void> {
    return new Promise((confirm, fail) => this.calls.push({ shard, entries, confirm, fail }));
  }

  confirmAll(): void {
    for (const call of this.calls) call.confirm();
  }
}

/** An entry `second` seconds after 2019-10-12T08:10:50.25Z, which is in shard `second % 5`. */
function entry(second: number, value?: string | null): CreateEntryDto {
  const timestamp = entryTimestamp((50 + second) * 1000 + 250);
  return value === undefined ? { timestamp } : { timestamp, value };
}

describe('IngestService', () => {
  let publisher: FakePublisher;
  let service: IngestService;
  let metrics: ApiMetrics;

  beforeEach(() => {
    publisher = new FakePublisher();
    metrics = new ApiMetrics(new Registry());
    service = new IngestService(
      { shardsCount: SHARDS } as RabbitmqConfig,
      publisher as unknown as ShardPublisher,
      metrics,
    );
  });

  /** Accepts `entries` with every publish confirmed, and returns the answer. */
  async function acceptConfirmed(entries: CreateEntryDto[]) {
    const accepted = service.accept(entries);
    await Promise.resolve();
    publisher.confirmAll();
    return accepted;
  }

  it('gives every entry a fresh id and answers the ids in request order', async () => {
    const entries = [entry(3), entry(0, 'a'), entry(7), entry(3, 'b')];
    const { accepted, ids } = await acceptConfirmed(entries);

    expect(accepted).toBe(4);
    expect(ids).toHaveLength(4);
    ids.forEach((id) => expect(id).toMatch(UUID));
    expect(new Set(ids).size).toBe(4);
    const published = new Map(publisher.calls.flatMap(({ entries: wire }) => wire.map((w) => [w.id, w])));
    expect(ids.map((id) => published.get(id)?.timestamp)).toEqual(entries.map(({ timestamp }) => timestamp));
    expect((await metrics.entriesAccepted.get()).values[0].value).toBe(4);
  });

  it("publishes one message per shard with entries, holding that shard's entries in request order", async () => {
    // Seconds 0-11 without 4 and 9: shards 0 and 1 get three entries, 2 and 3 two, shard 4 none.
    const entries = Array.from({ length: 12 }, (_, second) => entry(second, `v${second}`)).filter(
      (_, second) => second % 5 !== 4,
    );
    await acceptConfirmed(entries);

    const shards = publisher.calls.map(({ shard }) => shard).sort();
    expect(shards).toEqual([...new Set(entries.map(({ timestamp }) => shardOf(timestamp, SHARDS)))].sort());
    for (const { shard, entries: wire } of publisher.calls) {
      const expected = entries.filter(({ timestamp }) => shardOf(timestamp, SHARDS) === shard);
      expect(wire.map(({ timestamp, value }) => ({ timestamp, value }))).toEqual(expected);
    }
  });

  it('leaves value out of the wire entry when it is null or absent', async () => {
    await acceptConfirmed([entry(0, null), entry(5), entry(10, '')]);

    expect(publisher.calls).toHaveLength(1);
    const [absentNull, absent, empty] = publisher.calls[0].entries;
    expect(Object.keys(absentNull).sort()).toEqual(['id', 'timestamp']);
    expect(Object.keys(absent).sort()).toEqual(['id', 'timestamp']);
    expect(empty.value).toBe('');
  });

  it('publishes the shards concurrently and answers only once every one is confirmed', async () => {
    let answered = false;
    const accepted = service.accept([entry(0), entry(1), entry(2)]).then((answer) => {
      answered = true;
      return answer;
    });
    await Promise.resolve();
    expect(publisher.calls).toHaveLength(3);

    publisher.calls[0].confirm();
    publisher.calls[2].confirm();
    await new Promise((resolve) => setImmediate(resolve));
    expect(answered).toBe(false);

    publisher.calls[1].confirm();
    await expect(accepted).resolves.toMatchObject({ accepted: 3 });
  });

  it('rejects when any shard is not confirmed', async () => {
    const accepted = service.accept([entry(0), entry(1), entry(2)]);
    await Promise.resolve();
    const refusal = new BrokerUnavailableError('RabbitMQ did not confirm the entries of shard 1');
    publisher.calls[0].confirm();
    publisher.calls[1].fail(refusal);
    publisher.calls[2].confirm();

    await expect(accepted).rejects.toBe(refusal);
    expect((await metrics.entriesAccepted.get()).values[0]?.value ?? 0).toBe(0);
  });
});

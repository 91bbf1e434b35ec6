import { randomBytes } from 'node:crypto';
import { ENTRIES_PATTERN } from '@app/contracts';
import { deadLetterQueueName, shardQueueName } from '@app/sharding';
import { countIds, fetchMetrics, metricValue, timestampInShard, waitFor, waitForAllWritten } from '@app/testing';
import { CASE_TIMEOUT_MS, FaultCase, pick, summary } from './fault-kit';

const SHARDS = 5;

const timestampOf = (shard: number) => timestampInShard(shard, SHARDS);

function packet(shard: number, entries: unknown, pattern: string = ENTRIES_PATTERN): string {
  return JSON.stringify({ pattern, data: { shard, entries } });
}

/** Deliveries no consumer may write or retry, each for the queue of its shard. */
function poison(): Array<{ shard: number; what: string; body: Buffer }> {
  const list: Array<{ shard: number; what: string; body: string | Buffer }> = [
    // 0xff never starts valid UTF-8, so no luck of the draw makes these bytes JSON.
    { shard: 0, what: 'garbage bytes', body: Buffer.concat([Buffer.from([0xff, 0xfe, 0x00]), randomBytes(61)]) },
    { shard: 1, what: 'an empty body', body: '' },
    { shard: 0, what: 'JSON null', body: 'null' },
    { shard: 2, what: 'a JSON object of the wrong shape', body: '{"hello":"world"}' },
    { shard: 3, what: 'a JSON array', body: JSON.stringify([{ id: 'poison-array', timestamp: timestampOf(3) }]) },
    { shard: 3, what: 'entries that are not a list', body: packet(3, 'entries') },
    { shard: 4, what: 'no entries', body: packet(4, []) },
    {
      shard: 4,
      what: 'another pattern',
      body: packet(4, [{ id: 'poison-pattern', timestamp: timestampOf(4) }], 'entries.v0'),
    },
    // An entry of another shard is no poison (CONTRACT: a SHARDS_COUNT disagreement puts it back
    // and stops the shard): apps/consumer/test/topology-mismatch.e2e-spec.ts.
    {
      shard: 2,
      what: 'an invalid timestamp (Feb 30)',
      body: packet(2, [{ id: 'poison-feb30', timestamp: '2019-02-30T08:10:00Z' }]),
    },
    {
      shard: 2,
      what: 'a timestamp without a zone',
      body: packet(2, [{ id: 'poison-nozone', timestamp: '2019-10-12T08:10:02' }]),
    },
    {
      shard: 3,
      what: 'a valid entry beside one without an id',
      body: packet(3, [{ id: 'poison-valid-neighbour', timestamp: timestampOf(3) }, { timestamp: timestampOf(3) }]),
    },
    {
      shard: 4,
      what: 'a value that is not a string',
      body: packet(4, [{ id: 'poison-value', timestamp: timestampOf(4), value: 7 }]),
    },
  ];
  return list.map((item) => ({ ...item, body: Buffer.from(item.body) }));
}

describe('poison deliveries straight into the shard queues, mid-stream', () => {
  const run = new FaultCase();

  afterEach(() => run.dispose());

  it(
    'dead-letters every one and keeps every shard flowing',
    async () => {
      const pipeline = await run.pipelineFor('faults-poison', { shardsCount: SHARDS });
      const { broker, prefix } = pipeline;
      const api = await pipeline.startApi();
      const consumer = await pipeline.startConsumer({ BATCH_FLUSH_MS: '200' });
      const load = run.startLoad(api.url, { requestsPerSecond: 20, entriesPerRequest: 10, label: 'poison' });
      await waitFor(() => load.stats().created >= 20, { description: '20 requests answered 201 before the poison' });

      const deliveries = poison();
      // Each publish waits for its confirm, with the kit's deadline on every broker call.
      for (const { shard, body } of deliveries) await broker.publishRaw(shardQueueName(prefix, shard), body);
      const poisonedAt = Date.now();
      const deadLetter = deadLetterQueueName(prefix);
      await waitFor(async () => (await broker.count(deadLetter)) >= deliveries.length, {
        description: `${deliveries.length} deliveries in ${deadLetter}`,
      });
      await waitFor(() => load.createdSince(poisonedAt) >= pick(100, 40), {
        description: 'requests answered 201 after the poison',
        timeoutMs: 20_000,
      });
      await load.stop();

      const ids = load.acceptedIds();
      const files = await waitForAllWritten(pipeline.dir, ids);
      const counts = countIds(files);
      const deadLettered = await broker.fetchAll(deadLetter);
      const hex = (body: Buffer) => body.toString('hex');
      const logged = consumer.app.logs.match(/dead-lettering a delivery of/g)?.length ?? 0;
      const stats = load.stats();
      // Shards with a file holding an entry of a request sent after the last poison was published.
      const afterPoison = new Set(load.records.filter((r) => r.startedAt >= poisonedAt).flatMap((r) => r.ids));
      const shardsWritingAfter = new Set(
        files.filter((file) => file.lines.some((line) => afterPoison.has(line.id))).map((file) => file.shard),
      );
      summary('poison deliveries', {
        poison: deliveries.length,
        deadLettered: deadLettered.length,
        loggedAsErrors: logged,
        requests: stats.requests,
        status201: stats.created,
        status201AfterPoison: load.createdSince(poisonedAt),
        shardsWritingAfterPoison: shardsWritingAfter.size,
        lost: ids.filter((id) => !counts.has(id)).length,
      });

      expect(deadLettered.map((m) => hex(m.content)).sort()).toEqual(deliveries.map((d) => hex(d.body)).sort());
      expect(logged).toBe(deliveries.length);
      expect(metricValue(await fetchMetrics(consumer.url), 'consumer_dead_lettered_total')).toBe(deliveries.length);
      // A poisoned delivery is rejected whole: not even its valid neighbour is written.
      expect([...counts.keys()].filter((id) => id.startsWith('poison-'))).toEqual([]);
      expect(ids.every((id) => counts.get(id) === 1)).toBe(true);
      expect(stats.created).toBe(stats.requests);
      // Every shard, poisoned ones included, kept writing what came after the poison.
      expect([...shardsWritingAfter].sort()).toEqual([0, 1, 2, 3, 4]);
      expect(consumer.app.running).toBe(true);
    },
    CASE_TIMEOUT_MS,
  );
});

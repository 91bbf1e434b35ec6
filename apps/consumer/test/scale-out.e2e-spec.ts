import type { WorkersResponse } from '@app/contracts';
import { shardQueueOptions } from '@app/rabbitmq';
import { deadLetterQueueName, shardQueueName } from '@app/sharding';
import {
  type AppProcess,
  type BatchFile,
  Pipeline,
  countIds,
  fetchWorkers,
  postMany,
  shardsById,
  waitForAllWritten,
  waitFor,
} from '@app/testing';

const SHARDS = 5;

/** Waits until every shard queue of `pipeline`'s prefix has `count` consumers subscribed. */
async function waitForConsumers(pipeline: Pipeline, count: number): Promise<void> {
  const { broker, prefix } = pipeline;
  await waitFor(
    () =>
      broker.withChannel(`the consumer counts of ${prefix}`, async (channel) => {
        for (let shard = 0; shard < SHARDS; shard++) {
          const { consumerCount } = await channel.checkQueue(shardQueueName(prefix, shard));
          if (consumerCount !== count) return false;
        }
        return true;
      }),
    { description: `${count} consumers on every shard queue of ${prefix}` },
  );
}

function processed(body: WorkersResponse): number {
  return body.shards.flatMap((shard) => shard.workers).reduce((sum, worker) => sum + worker.processed, 0);
}

/** The file of every batch a consumer logged as written (LOG_FORMAT=json: one object per line). */
function filesLogged(app: AppProcess): string[] {
  return app.logs
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { event?: string; file?: string })
    .filter((record) => record.event === 'batch_written')
    .map((record) => String(record.file));
}

/**
 * Every accepted entry is in exactly one file, of its own shard; and every batch the consumers
 * wrote is its own file: as many files as writes, under as many names, none replaced by another.
 */
async function expectEachEntryOnceAndNoFileOverwritten(
  files: BatchFile[],
  expected: Map<string, number>,
  consumers: AppProcess[],
): Promise<void> {
  const counts = countIds(files);
  expect(counts.size).toBe(expected.size);
  expect([...counts.values()].filter((count) => count !== 1)).toEqual([]);
  for (const file of files) for (const line of file.lines) expect(expected.get(line.id)).toBe(file.shard);

  // Each write is logged right after its rename; wait for the last log lines to come in.
  const logged = await waitFor(
    () => {
      const names = consumers.flatMap(filesLogged);
      return names.length >= files.length ? names : false;
    },
    { description: `${files.length} batch_written log lines`, timeoutMs: 5_000 },
  );
  expect(new Set(logged).size).toBe(logged.length);
  expect([...logged].sort()).toEqual(files.map((file) => file.name).sort());
}

describe('scale-out: two consumer processes over one output folder', () => {
  let pipeline: Pipeline;
  afterEach(async () => pipeline?.dispose());

  async function startTwo(envA: Record<string, string>, envB: Record<string, string>) {
    const common = { BATCH_FLUSH_MS: '200' };
    return Promise.all([
      pipeline.startConsumer({ ...common, ...envA }),
      pipeline.startConsumer({ ...common, ...envB }),
    ]);
  }

  it('splits the shards with CONSUMER_SHARDS: each drains only its own, every entry lands once', async () => {
    pipeline = await Pipeline.create('split', { shardsCount: SHARDS, env: { LOG_FORMAT: 'json' } });
    const api = await pipeline.startApi();
    const [low, high] = await startTwo({ CONSUMER_SHARDS: '0,1,2' }, { CONSUMER_SHARDS: '3,4' });

    const expected = shardsById(await postMany(api.url, 20, 50), SHARDS);
    const files = await waitForAllWritten(pipeline.dir, expected.keys());
    await expectEachEntryOnceAndNoFileOverwritten(files, expected, [low.app, high.app]);

    const [lowWorkers, highWorkers] = [await fetchWorkers(low.url), await fetchWorkers(high.url)];
    expect(lowWorkers.shards.map((s) => s.shard)).toEqual([0, 1, 2]);
    expect(highWorkers.shards.map((s) => s.shard)).toEqual([3, 4]);
    const inLow = [...expected.values()].filter((shard) => shard <= 2).length;
    expect(processed(lowWorkers)).toBe(inLow);
    expect(processed(highWorkers)).toBe(expected.size - inLow);
    expect(await pipeline.queuedMessages()).toBe(0);
  });

  it('competes for every shard: both consume, every entry lands once, no file name is reused', async () => {
    pipeline = await Pipeline.create('compete', { shardsCount: SHARDS, env: { LOG_FORMAT: 'json' } });
    const api = await pipeline.startApi();
    // Same worker ids in both processes (0-1, 0-2, ...), so only the process part keeps names apart.
    const [a, b] = await startTwo({}, {});
    // /health says connected, not subscribed: without this the first one could take every delivery.
    await waitForConsumers(pipeline, 2);

    const expected = shardsById(await postMany(api.url, 20, 50), SHARDS);
    const files = await waitForAllWritten(pipeline.dir, expected.keys());
    await expectEachEntryOnceAndNoFileOverwritten(files, expected, [a.app, b.app]);

    const [aWorkers, bWorkers] = [await fetchWorkers(a.url), await fetchWorkers(b.url)];
    for (const body of [aWorkers, bWorkers]) expect(body.shards.map((s) => s.shard)).toEqual([0, 1, 2, 3, 4]);
    expect(processed(aWorkers)).toBeGreaterThan(0);
    expect(processed(bWorkers)).toBeGreaterThan(0);
    expect(processed(aWorkers) + processed(bWorkers)).toBe(expected.size);
    const ids = (body: WorkersResponse) => body.shards.flatMap((s) => s.workers.map((w) => w.id));
    expect(ids(aWorkers).filter((id) => ids(bWorkers).includes(id)).length).toBeGreaterThan(0);
    expect(await pipeline.queuedMessages()).toBe(0);
  });

  describe('with QUEUE_TYPE=quorum', () => {
    /** Whether `queue` accepts a redeclaration as `queueType`; a queue of another type refuses it. */
    async function declaredAs(queue: string, queueType: 'classic' | 'quorum'): Promise<boolean> {
      const options = shardQueueOptions({ queuePrefix: pipeline.prefix, shardsCount: SHARDS, queueType });
      return pipeline.broker
        .withChannel(`declaring ${queue} as ${queueType}`, (channel) => channel.assertQueue(queue, options))
        .then(
          () => true,
          () => false,
        );
    }

    it('declares quorum shard queues, writes every entry once and dead-letters a poison message', async () => {
      pipeline = await Pipeline.create('quorum', { shardsCount: SHARDS, env: { QUEUE_TYPE: 'quorum' } });
      const api = await pipeline.startApi();
      const consumer = await pipeline.startConsumer({ BATCH_FLUSH_MS: '200' });
      const shard1 = shardQueueName(pipeline.prefix, 1);
      expect(await declaredAs(shard1, 'quorum')).toBe(true);
      expect(await declaredAs(shard1, 'classic')).toBe(false);

      await pipeline.broker.publishRaw(shard1, 'not an entries packet');
      const expected = shardsById(await postMany(api.url, 10, 50), SHARDS);
      const files = await waitForAllWritten(pipeline.dir, expected.keys());
      expect([...countIds(files).values()].every((count) => count === 1)).toBe(true);
      await waitFor(async () => (await pipeline.broker.count(deadLetterQueueName(pipeline.prefix))) === 1, {
        description: 'the poison message in the dead-letter queue',
      });
      expect(consumer.app.logs).toMatch(/dead-lettering a delivery of .*shard\.1: payload is not JSON/);
      expect(consumer.app.running).toBe(true);
      expect(await pipeline.queuedMessages()).toBe(0);
    });
  });
});

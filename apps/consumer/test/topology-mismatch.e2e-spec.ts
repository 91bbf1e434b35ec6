import { encodeShardPacket } from '@app/contracts';
import { deadLetterQueueName, shardOf, shardQueueName } from '@app/sharding';
import { Pipeline, healthStatus, postEntries, timestampInShard, waitFor, writtenCount } from '@app/testing';

interface HealthBody {
  details?: { shards?: { status: string; message?: string; notConsuming?: number[]; unconsumedQueues?: string[] } };
}

async function healthOf(url: string): Promise<{ status: number; body: HealthBody }> {
  const response = await fetch(`${url}/health`);
  return { status: response.status, body: (await response.json()) as HealthBody };
}

// The queues exist as classic ones, then both apps start with QUEUE_TYPE=quorum: the broker refuses
// their declarations (406 PRECONDITION_FAILED). Neither may crash; both say why, once. The api
// answers 503; the consumer's /health is 503 too once its shards have gone 5 s without a consumer.
describe('apps started against queues declared with other arguments', () => {
  let pipeline: Pipeline;
  afterEach(async () => pipeline?.dispose());

  it('stay up, tell in /health and explain the mismatch without repeating it', async () => {
    pipeline = await Pipeline.create('mismatch');
    const classic = await pipeline.startApi();
    expect(await classic.app.stop('SIGTERM')).toBe(0);

    // Port 0 and the ready line: no other process can take a port between choosing and binding it.
    const api = pipeline.spawn('api', { QUEUE_TYPE: 'quorum', API_HOST: '127.0.0.1', API_PORT: '0' });
    const consumer = pipeline.spawn('consumer', {
      QUEUE_TYPE: 'quorum',
      CONSUMER_HOST: '127.0.0.1',
      CONSUMER_PORT: '0',
      DATA_OUTPUT_DIR: pipeline.dir,
      LOG_LEVEL: 'debug',
    });
    const [apiUrl, consumerUrl] = await Promise.all([api.listeningUrl(), consumer.listeningUrl()]);
    await api.waitForLog('PRECONDITION_FAILED');
    await consumer.waitForLog('do QUEUE_TYPE and QUEUE_PREFIX match');
    // Retries show at debug level only; wait for a few rounds of them.
    await waitFor(() => (consumer.logs.match(/failed again/g) ?? []).length >= 10, {
      description: 'the consumer to retry its channels a few times',
    });

    expect(api.running).toBe(true);
    expect(consumer.running).toBe(true);
    expect(await healthStatus(apiUrl)).toBe(503);
    const health = await waitFor(
      async () => {
        const result = await healthOf(consumerUrl);
        return result.status === 503 ? result : undefined;
      },
      { description: 'consumer /health 503 for shards without a consumer', timeoutMs: 15_000 },
    );
    expect(health.body.details?.shards).toMatchObject({ status: 'down', notConsuming: [0, 1, 2, 3, 4] });
    expect(health.body.details?.shards?.message).toMatch(/shard 0 has had no consumer on .*\.shard\.0 for \d+ s/);
    const post = await fetch(`${apiUrl}/message`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([{ timestamp: '2019-10-12T08:10:53Z' }]),
    });
    expect(post.status).toBe(503);
    // One explanation per shard, not one per retry.
    expect((consumer.logs.match(/do QUEUE_TYPE and QUEUE_PREFIX match/g) ?? []).length).toBe(5);
  });
});

// CONTRACT: a SHARDS_COUNT disagreement, in either direction, is logged naming the counts (or the
// queues nobody consumes), the shards concerned stop, /health is 503, and no entry is written to a
// file or dead-lettered for it: the entries wait in their queues.
describe('api and consumer disagreeing on SHARDS_COUNT', () => {
  let pipeline: Pipeline;
  afterEach(async () => pipeline?.dispose());

  it('api with more shards: names the queues nobody consumes, puts its messages back, /health 503', async () => {
    pipeline = await Pipeline.create('more-shards', { shardsCount: 10 });
    const { broker, prefix } = pipeline;
    const api = await pipeline.startApi();
    const consumer = pipeline.spawn('consumer', {
      SHARDS_COUNT: '5',
      CONSUMER_HOST: '127.0.0.1',
      CONSUMER_PORT: '0',
      DATA_OUTPUT_DIR: pipeline.dir,
    });
    const url = await consumer.listeningUrl();
    // Shard 2 of 10 is a queue both apps know; shard 7 of 10 only the api's.
    await postEntries(api.url, [{ timestamp: timestampInShard(2, 10), value: 'a' }]);
    await postEntries(api.url, [{ timestamp: timestampInShard(7, 10), value: 'b' }]);

    const unconsumed = [5, 6, 7, 8, 9].map((shard) => shardQueueName(prefix, shard));
    await consumer.waitForLog(`shard queues ${unconsumed.join(', ')} exist but this consumer has SHARDS_COUNT=5`);
    await consumer.waitForLog(/SHARDS_COUNT disagreement on \S+\.shard\.2: .*SHARDS_COUNT=10.*SHARDS_COUNT=5/);
    const health = await healthOf(url);
    expect(health.status).toBe(503);
    expect(health.body.details?.shards?.unconsumedQueues).toEqual(unconsumed);
    expect(health.body.details?.shards?.message).toMatch(/SHARDS_COUNT=10/);

    await waitFor(async () => (await broker.count(shardQueueName(prefix, 2))) === 1, {
      description: 'the shard-2 message back in its queue',
    });
    expect(await broker.count(shardQueueName(prefix, 7))).toBe(1);
    expect(await broker.count(deadLetterQueueName(prefix))).toBe(0);
    expect(await writtenCount(pipeline.dir)).toBe(0);
    expect(consumer.running).toBe(true);
  });

  it('api with fewer shards: names both counts, stops the shard, writes and dead-letters nothing, /health 503', async () => {
    pipeline = await Pipeline.create('fewer-shards', { shardsCount: 5 });
    const { broker, prefix } = pipeline;
    const api = await pipeline.startApi({ SHARDS_COUNT: '3' });
    const consumer = pipeline.spawn('consumer', {
      CONSUMER_HOST: '127.0.0.1',
      CONSUMER_PORT: '0',
      DATA_OUTPUT_DIR: pipeline.dir,
    });
    const url = await consumer.listeningUrl();
    await postEntries(api.url, [{ timestamp: timestampInShard(1, 3), value: 'a' }]);
    // A message without the header whose entry belongs to another shard of ours: no poison either.
    // Queue 4 is the consumer's alone: publish once it is declared and consumed.
    await consumer.waitForLog(`consuming ${shardQueueName(prefix, 4)}`);
    const shard0 = timestampInShard(0, 5);
    expect(shardOf(shard0, 5)).toBe(0);
    await broker.publishRaw(
      shardQueueName(prefix, 4),
      encodeShardPacket({ shard: 4, entries: [{ id: 'x', timestamp: shard0 }] }),
    );

    await consumer.waitForLog(/SHARDS_COUNT disagreement on \S+\.shard\.1: .*SHARDS_COUNT=3.*SHARDS_COUNT=5/);
    await consumer.waitForLog(/SHARDS_COUNT disagreement on \S+\.shard\.4: .*belongs to shard 0 of 5, not 4/);
    const health = await waitFor(
      async () => {
        const result = await healthOf(url);
        return result.status === 503 ? result : undefined;
      },
      { description: 'consumer /health 503', timeoutMs: 15_000 },
    );
    expect(health.body.details?.shards?.message).toMatch(/SHARDS_COUNT=3.*SHARDS_COUNT=5/);
    await waitFor(async () => (await broker.count(shardQueueName(prefix, 1))) === 1, {
      description: 'the shard-1 message back in its queue',
    });
    await waitFor(async () => (await broker.count(shardQueueName(prefix, 4))) === 1, {
      description: 'the shard-4 message back in its queue',
    });
    expect(await broker.count(deadLetterQueueName(prefix))).toBe(0);
    expect(await writtenCount(pipeline.dir)).toBe(0);
    expect(consumer.running).toBe(true);
  });
});

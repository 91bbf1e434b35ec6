import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readConsumerConfig } from '@app/config';
import { encodeShardPacket } from '@app/contracts';
import { shardQueueName, deadLetterQueueName } from '@app/sharding';
import {
  Pipeline,
  TcpProxy,
  countIds,
  fetchMetrics,
  fetchWorkers,
  PoolSampler,
  metricValue,
  postMany,
  shardsById,
  waitForAllWritten,
  waitForHealth,
  writtenCount,
  testBrokerUrl,
  waitFor,
} from '@app/testing';
import { STALLING_CONSUMER, slowestWriteMs } from './support/stalling-sink';

const BATCH_SIZE = 5;

describe('consumer end to end (real api, consumer, RabbitMQ and disk)', () => {
  let pipeline: Pipeline;
  afterEach(async () => pipeline?.dispose());

  it('writes every accepted entry exactly once, in a file of its shard, in batches of BATCH_SIZE', async () => {
    pipeline = await Pipeline.create('flow');
    const api = await pipeline.startApi();
    const consumer = await pipeline.startConsumer({
      BATCH_SIZE: String(BATCH_SIZE),
      BATCH_FLUSH_MS: '300',
      LOG_FORMAT: 'json',
    });

    const pools = new PoolSampler(consumer.url);
    const accepted = await postMany(api.url, 20, 50);
    const expected = shardsById(accepted, pipeline.shardsCount);
    expect(expected.size).toBe(1000);
    const files = await waitForAllWritten(pipeline.dir, expected.keys());
    const bounds = await pools.stop();

    const counts = countIds(files);
    expect([...counts.values()].every((count) => count === 1)).toBe(true);
    expect(counts.size).toBe(expected.size);
    for (const file of files) {
      for (const line of file.lines) expect(expected.get(line.id)).toBe(file.shard);
      expect(file.lines.length).toBeGreaterThan(0);
      expect(file.lines.length).toBeLessThanOrEqual(BATCH_SIZE);
    }
    // Entries arrive in bursts of 50 per request, so partial batches are the exception.
    const full = files.filter((file) => file.lines.length === BATCH_SIZE).length;
    expect(full / files.length).toBeGreaterThan(0.8);
    const line = files[0].lines[0];
    expect(Object.keys(line)).toEqual(['id', 'timestamp', 'value']);

    const workers = await fetchWorkers(consumer.url);
    expect(workers.shards.map((s) => s.shard)).toEqual([0, 1, 2, 3, 4]);
    const processed = workers.shards.flatMap((s) => s.workers).reduce((sum, w) => sum + w.processed, 0);
    expect(processed).toBe(expected.size);
    for (const { shard, workers: pool } of workers.shards) {
      const live = pool.filter((w) => w.state === 'active');
      expect(live.length).toBeGreaterThanOrEqual(3);
      expect(live.length).toBeLessThanOrEqual(4);
      for (const worker of pool) expect(worker.id).toMatch(new RegExp(`^${shard}-\\d+$`));
    }
    // And while the entries were written, not only after.
    expect(bounds.samples).toBeGreaterThan(0);
    expect(bounds.minLive).toBeGreaterThanOrEqual(3);
    expect(bounds.maxLive).toBeLessThanOrEqual(4);

    const metrics = await fetchMetrics(consumer.url);
    expect(metricValue(metrics, 'consumer_entries_written_total')).toBe(expected.size);
    expect(metricValue(metrics, 'consumer_batch_write_seconds_count')).toBe(files.length);
    expect(metricValue(metrics, 'consumer_active_workers', { shard: '0' })).toBeGreaterThanOrEqual(3);
    expect(metricValue(metrics, 'broker_connected', { app: 'consumer' })).toBe(1);
    expect(metricValue(metrics, 'http_requests_total', { route: '/workers', status: '200' })).toBe(bounds.polls + 1);

    // Everything was acknowledged: a graceful stop leaves nothing to redeliver.
    expect(await consumer.app.stop('SIGTERM')).toBe(0);
    expect(await pipeline.queuedMessages()).toBe(0);

    // LOG_FORMAT=json: one object per line, batch and history events with their fields.
    const logs = consumer.app.logs
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    const batches = logs.filter((log) => log.event === 'batch_written');
    expect(batches).toHaveLength(files.length);
    expect(batches[0]).toEqual(
      expect.objectContaining({
        worker: expect.any(String),
        shard: expect.any(Number),
        entries: expect.any(Number),
        file: expect.any(String),
      }),
    );
    const finals = logs.filter((log) => log.event === 'worker_history' && String(log.message).includes('final'));
    expect(finals).toHaveLength(5);
    expect(finals[0].workers).toEqual(
      expect.arrayContaining([expect.objectContaining({ state: 'retired', reason: 'shutdown' })]),
    );
  });

  /** A backlog of 4,000 entries, a consumer stopped by `signal` mid-stream, and a second one to finish. */
  async function interruptMidStream(name: string, signal: 'SIGTERM' | 'SIGKILL') {
    pipeline = await Pipeline.create(name);
    const api = await pipeline.startApi();
    const expected = shardsById(await postMany(api.url, 40, 100), pipeline.shardsCount);
    // A small prefetch keeps most of the backlog in the queue when the signal comes.
    const first = await pipeline.startConsumer({ PREFETCH: '3' });
    await waitFor(async () => (await writtenCount(pipeline.dir)) >= 300, {
      description: 'the first consumer to write some entries',
      timeoutMs: 30_000,
    });
    const exitCode = await first.app.stop(signal);
    expect(await writtenCount(pipeline.dir)).toBeLessThan(expected.size);
    await pipeline.startConsumer();
    const counts = countIds(await waitForAllWritten(pipeline.dir, expected.keys()));
    return { exitCode, expected, counts };
  }

  it('loses and duplicates nothing across a SIGTERM mid-stream and a restart', async () => {
    const { exitCode, expected, counts } = await interruptMidStream('sigterm', 'SIGTERM');
    expect(exitCode).toBe(0);
    expect(counts.size).toBe(expected.size);
    expect([...counts.values()].filter((count) => count > 1)).toHaveLength(0);
  });

  it('loses nothing across a SIGKILL mid-stream and a restart (copies share an id)', async () => {
    const { exitCode, expected, counts } = await interruptMidStream('sigkill', 'SIGKILL');
    expect(exitCode).toBeNull();
    expect(counts.size).toBe(expected.size);
  });

  it('retires a worker whose write outlives WORKER_TIMEOUT_MS and has its entries written by another', async () => {
    // Far above the slowest real write measured now, so that only the stalled writes time out.
    const workerTimeoutMs = Math.max(1_000, Math.ceil((await slowestWriteMs(readConsumerConfig({}))) * 20));
    pipeline = await Pipeline.create('timeout');
    const api = await pipeline.startApi();
    const consumer = await pipeline.startConsumer(
      { WORKER_TIMEOUT_MS: String(workerTimeoutMs), BATCH_FLUSH_MS: '200' },
      { entry: STALLING_CONSUMER, args: ['9'] },
    );
    const pools = new PoolSampler(consumer.url);
    const expected = shardsById(await postMany(api.url, 10, 50), pipeline.shardsCount);
    const files = await waitForAllWritten(pipeline.dir, expected.keys());
    const bounds = await pools.stop();
    expect([...countIds(files).values()].every((count) => count === 1)).toBe(true);
    expect(countIds(files).size).toBe(expected.size);

    const { shards } = await fetchWorkers(consumer.url);
    const workers = shards.flatMap((shard) => shard.workers);
    expect(workers.filter((w) => w.state === 'retired' && w.reason === 'timeout').length).toBeGreaterThan(0);
    // Sampled while the entries were written, not once after.
    expect(bounds.samples).toBeGreaterThan(0);
    expect(bounds.minLive).toBeGreaterThanOrEqual(3);
    expect(bounds.maxLive).toBeLessThanOrEqual(4);
    expect(consumer.app.logs).toMatch(
      new RegExp(`timed out after ${workerTimeoutMs} ms writing \\d+ entries; retired`),
    );
    expect(metricValue(await fetchMetrics(consumer.url), 'consumer_worker_timeouts_total')).toBeGreaterThan(0);
  });

  it('dead-letters garbage payloads while valid entries flow on', async () => {
    pipeline = await Pipeline.create('poison');
    const { broker, prefix } = pipeline;
    const api = await pipeline.startApi();
    const shard1 = shardQueueName(prefix, 1);
    await broker.publishRaw(shard1, 'not json at all');
    await broker.publishRaw(shard1, encodeShardPacket({ shard: 1, entries: [] }));
    // An entry of another shard is no poison but a SHARDS_COUNT disagreement: topology-mismatch.e2e-spec.ts.

    const consumer = await pipeline.startConsumer({ BATCH_FLUSH_MS: '200' });
    const expected = shardsById(await postMany(api.url, 5, 40), pipeline.shardsCount);
    await waitForAllWritten(pipeline.dir, expected.keys());
    await waitFor(async () => (await broker.count(deadLetterQueueName(prefix))) === 2, {
      description: 'two dead-lettered deliveries',
    });
    expect(consumer.app.running).toBe(true);
    expect(consumer.app.logs).toMatch(/dead-lettering a delivery of .*shard\.1: payload is not JSON/);
    expect(metricValue(await fetchMetrics(consumer.url), 'consumer_dead_lettered_total', { shard: '1' })).toBe(2);
  });

  it('keeps running while the broker is away, reports 503, and catches up when it is back', async () => {
    pipeline = await Pipeline.create('outage');
    const proxy = await TcpProxy.forAmqpUrl(testBrokerUrl());
    try {
      const api = await pipeline.startApi();
      const consumer = await pipeline.startConsumer({
        RABBITMQ_URL: proxy.amqpUrlFor(testBrokerUrl()),
        BATCH_FLUSH_MS: '200',
      });
      proxy.cut();
      await waitForHealth(consumer.url, 503, 'the consumer cut off from the broker');
      const expected = shardsById(await postMany(api.url, 5, 40), pipeline.shardsCount);
      expect(await writtenCount(pipeline.dir)).toBe(0);

      proxy.restore();
      await consumer.app.waitUntilHealthy(`${consumer.url}/health`);
      await waitForAllWritten(pipeline.dir, expected.keys());
      expect(consumer.app.logs).toContain('RabbitMQ is not reachable');
    } finally {
      await proxy.close();
    }
  });

  it('starts before the broker is reachable and consumes once it is', async () => {
    pipeline = await Pipeline.create('late-broker');
    const proxy = await TcpProxy.forAmqpUrl(testBrokerUrl());
    try {
      proxy.cut();
      const api = await pipeline.startApi();
      // Port 0 and the ready line: no other process can take the port between choosing and binding it.
      const consumer = pipeline.spawn('consumer', {
        RABBITMQ_URL: proxy.amqpUrlFor(testBrokerUrl()),
        CONSUMER_HOST: '127.0.0.1',
        CONSUMER_PORT: '0',
        DATA_OUTPUT_DIR: pipeline.dir,
        BATCH_FLUSH_MS: '200',
      });
      const url = await consumer.listeningUrl();
      await waitForHealth(url, 503, 'the consumer without a broker');
      const expected = shardsById(await postMany(api.url, 3, 40), pipeline.shardsCount);
      proxy.restore();
      await consumer.waitUntilHealthy(`${url}/health`);
      await waitForAllWritten(pipeline.dir, expected.keys());
    } finally {
      await proxy.close();
    }
  });

  it('refuses to start on a bad variable, in one line naming it, with exit code 1', async () => {
    pipeline = await Pipeline.create('config');
    const badSize = pipeline.spawn('consumer', { BATCH_SIZE: 'five' });
    expect(await badSize.waitForExit()).toBe(1);
    expect(badSize.logs.trim()).toBe(
      'consumer: configuration error: Invalid BATCH_SIZE="five": expected a whole number from 1 to 1000000',
    );

    const file = join(pipeline.dir, 'a-file');
    await writeFile(file, '');
    const badDir = pipeline.spawn('consumer', { DATA_OUTPUT_DIR: file, CONSUMER_PORT: '0' });
    expect(await badDir.waitForExit()).toBe(1);
    expect(badDir.logs).toMatch(/configuration error: Invalid DATA_OUTPUT_DIR=".*a-file": expected a writable folder/);

    // Root ignores permissions, so /proc is where a root user meets an unwritable path; Node's own
    // recursive mkdir spun there for ever and the consumer never started nor stopped.
    const underProc = pipeline.spawn('consumer', { DATA_OUTPUT_DIR: '/proc/no-such-folder/data', CONSUMER_PORT: '0' });
    expect(await underProc.waitForExit()).toBe(1);
    expect(underProc.logs).toMatch(
      /configuration error: Invalid DATA_OUTPUT_DIR="\/proc\/no-such-folder\/data": expected a writable folder \(ENOENT/,
    );
  });
});

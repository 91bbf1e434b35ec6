import { readConsumerConfig } from '@app/config';
import {
  PoolSampler,
  countIds,
  fetchMetrics,
  fetchWorkers,
  metricValue,
  waitFor,
  waitForAllWritten,
} from '@app/testing';
import { STALLING_CONSUMER, STALL_LOG, slowestWriteMs } from '../../apps/consumer/test/support/stalling-sink';
import { CASE_TIMEOUT_MS, FaultCase, duplicates, pick, summary } from './fault-kit';

const STALL_EVERY = 7;

describe('a batch write stalls past WORKER_TIMEOUT_MS (a test sink that stalls every Nth write)', () => {
  const run = new FaultCase();

  afterEach(() => run.dispose());

  it(
    'retires the worker with reason timeout, has its entries written by another, loses and duplicates nothing',
    async () => {
      // Only stalled writes may time out: the timeout is far above the slowest real write (fsync
      // on) measured on this disk now, not a fixed figure that one slow fsync would cross.
      const slowest = await slowestWriteMs(readConsumerConfig({}));
      const workerTimeoutMs = Math.max(1_000, Math.ceil(slowest * 20));
      const pipeline = await run.pipelineFor('faults-sink-stall');
      const api = await pipeline.startApi();
      const consumer = await pipeline.startConsumer(
        { WORKER_TIMEOUT_MS: String(workerTimeoutMs), BATCH_FLUSH_MS: '200', SINK_FSYNC: 'true' },
        { entry: STALLING_CONSUMER, args: [String(STALL_EVERY)] },
      );
      const pools = new PoolSampler(consumer.url);
      const load = run.startLoad(api.url, { requestsPerSecond: 20, entriesPerRequest: 10, label: 'stall' });
      await waitFor(() => load.stats().created >= pick(200, 60), {
        description: 'requests answered 201',
        timeoutMs: 30_000,
      });
      await load.stop();

      const ids = load.acceptedIds();
      const files = await waitForAllWritten(pipeline.dir, ids);
      const bounds = await pools.stop();
      const counts = countIds(files);
      const { shards } = await fetchWorkers(consumer.url);
      const workers = shards.flatMap((shard) => shard.workers);
      const timedOut = workers.filter((w) => w.state === 'retired' && w.reason === 'timeout');
      const stalledWorkers = [
        ...consumer.app.logs.matchAll(new RegExp(`${STALL_LOG} \\(worker (\\d+-\\d+)\\)`, 'g')),
      ].map((match) => match[1]);
      // What a worker wrote is in files named after it; a timed-out worker is credited only with
      // what it wrote before its stalled batch, which another worker wrote instead.
      const linesByWorker = new Map<string, number>();
      for (const file of files) {
        const worker = /^worker-(\d+-\d+)_/.exec(file.name)?.[1] ?? '?';
        linesByWorker.set(worker, (linesByWorker.get(worker) ?? 0) + file.lines.length);
      }
      const stats = load.stats();
      summary('sink stall past WORKER_TIMEOUT_MS', {
        slowestRealWriteMs: slowest,
        workerTimeoutMs,
        requests: stats.requests,
        status201: stats.created,
        posted: stats.posted,
        batchFiles: files.length,
        stalledWrites: stalledWorkers.length,
        retiredTimeout: timedOut.length,
        workersEver: workers.length,
        poolSamples: bounds.samples,
        liveMin: bounds.minLive,
        liveMax: bounds.maxLive,
        lost: ids.filter((id) => !counts.has(id)).length,
        duplicatedIds: duplicates(counts).ids,
      });

      expect(stats.created).toBe(stats.requests);
      expect(stalledWorkers.length).toBeGreaterThan(0);
      // Every stalled write cost its worker its place, and nothing else did.
      expect(timedOut.map((w) => w.id).sort()).toEqual([...stalledWorkers].sort());
      expect(metricValue(await fetchMetrics(consumer.url), 'consumer_worker_timeouts_total')).toBe(
        stalledWorkers.length,
      );
      for (const worker of timedOut) expect(linesByWorker.get(worker.id) ?? 0).toBe(worker.processed);
      // Sampled every 200 ms while the load ran, not once after it: no pool ever left 3..4.
      expect(bounds.samples).toBeGreaterThanOrEqual(10);
      expect(bounds.minLive).toBeGreaterThanOrEqual(3);
      expect(bounds.maxLive).toBeLessThanOrEqual(4);
      expect(ids.every((id) => counts.get(id) === 1)).toBe(true);
      expect(counts.size).toBe(ids.length);
    },
    CASE_TIMEOUT_MS,
  );
});

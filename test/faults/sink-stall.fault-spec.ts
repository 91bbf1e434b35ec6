import { countIds, fetchMetrics, metricValue, waitFor, waitForAllWritten } from '@app/testing';
import { CASE_TIMEOUT_MS, FaultCase, duplicates, fetchWorkers, pick, summary } from './fault-kit';

const WORKER_TIMEOUT_MS = 300;
const STALL_EVERY = 7;

describe('a batch write stalls past WORKER_TIMEOUT_MS (FAULT_SINK_STALL_EVERY)', () => {
  const run = new FaultCase();

  afterEach(() => run.dispose());

  it(
    'retires the worker with reason timeout, has its entries written by another, loses and duplicates nothing',
    async () => {
      const pipeline = await run.pipelineFor('faults-sink-stall');
      const api = await pipeline.startApi();
      const consumer = await pipeline.startConsumer({
        FAULT_SINK_STALL_EVERY: String(STALL_EVERY),
        WORKER_TIMEOUT_MS: String(WORKER_TIMEOUT_MS),
        BATCH_FLUSH_MS: '200',
      });
      const load = run.startLoad(api.url, { requestsPerSecond: 20, entriesPerRequest: 10, label: 'stall' });
      await waitFor(() => load.stats().created >= pick(200, 60), {
        description: 'requests answered 201',
        timeoutMs: 30_000,
      });
      await load.stop();

      const ids = load.acceptedIds();
      const files = await waitForAllWritten(pipeline.dir, ids);
      const counts = countIds(files);
      const { shards } = await fetchWorkers(consumer.url);
      const workers = shards.flatMap((shard) => shard.workers);
      const timedOut = workers.filter((w) => w.state === 'retired' && w.reason === 'timeout');
      const stalls = consumer.app.logs.match(/FAULT_SINK_STALL_EVERY: stalling this write/g)?.length ?? 0;
      // What a worker wrote is in files named after it; a timed-out worker is credited only with
      // what it wrote before its stalled batch, which another worker wrote instead.
      const linesByWorker = new Map<string, number>();
      for (const file of files) {
        const worker = /^worker-(\d+-\d+)_/.exec(file.name)?.[1] ?? '?';
        linesByWorker.set(worker, (linesByWorker.get(worker) ?? 0) + file.lines.length);
      }
      const stats = load.stats();
      summary('sink stall past WORKER_TIMEOUT_MS', {
        requests: stats.requests,
        status201: stats.created,
        posted: stats.posted,
        batchFiles: files.length,
        stalledWrites: stalls,
        retiredTimeout: timedOut.length,
        workersEver: workers.length,
        lost: ids.filter((id) => !counts.has(id)).length,
        duplicatedIds: duplicates(counts).ids,
      });

      expect(stats.created).toBe(stats.requests);
      expect(stalls).toBeGreaterThan(0);
      // Every stalled write cost its worker its place, and nothing else did.
      expect(timedOut.length).toBe(stalls);
      expect(metricValue(await fetchMetrics(consumer.url), 'consumer_worker_timeouts_total')).toBe(stalls);
      for (const worker of timedOut) expect(linesByWorker.get(worker.id) ?? 0).toBe(worker.processed);
      for (const shard of shards) {
        const live = shard.workers.filter((w) => w.state === 'active').length;
        expect(live).toBeGreaterThanOrEqual(3);
        expect(live).toBeLessThanOrEqual(4);
      }
      expect(ids.every((id) => counts.get(id) === 1)).toBe(true);
      expect(counts.size).toBe(ids.length);
    },
    CASE_TIMEOUT_MS,
  );
});

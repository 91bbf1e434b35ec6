import { countIds, waitForAllWritten } from '@app/testing';
import { CASE_TIMEOUT_MS, FaultCase, duplicates, holdFault, pick, summary } from './fault-kit';

const RATE = { requestsPerSecond: 20, entriesPerRequest: 10 };
const DURATION_S = pick(60, 10);
const WARM_UP_S = pick(10, 2);
const WINDOW_S = pick(10, 3);
/** The last window's average RSS may be at most this many times the first window's after warm-up. */
const MAX_GROWTH = 1.5;

interface Sample {
  second: number;
  api: number;
  consumer: number;
}

/** Log lines of a LOG_FORMAT=json process at warn level or worse, and lines that are not JSON at all. */
function troubleLines(logs: string): string[] {
  return logs
    .split('\n')
    .filter((line) => line.trim() !== '')
    .filter((line) => {
      try {
        const { level } = JSON.parse(line) as { level?: string };
        return level === 'warn' || level === 'error' || level === 'fatal';
      } catch {
        return true;
      }
    });
}

const average = (values: number[]) => values.reduce((sum, v) => sum + v, 0) / Math.max(values.length, 1);

describe(`a ${DURATION_S} s soak at ${RATE.requestsPerSecond * RATE.entriesPerRequest} entries/s`, () => {
  const run = new FaultCase();
  let sampler: NodeJS.Timeout | undefined;

  afterEach(async () => {
    clearInterval(sampler);
    await run.dispose();
  });

  it(
    'answers every request 201, logs no warning or error, writes every entry once, and keeps memory flat',
    async () => {
      const pipeline = await run.pipelineFor('faults-soak');
      const api = await pipeline.startApi({ LOG_FORMAT: 'json' });
      const consumer = await pipeline.startConsumer({ LOG_FORMAT: 'json' });

      const samples: Sample[] = [];
      const started = Date.now();
      const sampleErrors: string[] = [];
      sampler = setInterval(() => {
        const second = (Date.now() - started) / 1000;
        try {
          samples.push({ second, api: api.app.memoryMb().rss, consumer: consumer.app.memoryMb().rss });
        } catch (error) {
          sampleErrors.push(String(error));
        }
      }, 1_000);
      const load = run.startLoad(api.url, { ...RATE, label: 'soak', maxInFlight: 40 });
      // The soak's stated duration: the load runs, nothing is awaited but the clock.
      await holdFault(DURATION_S * 1_000);
      clearInterval(sampler);
      await load.stop();

      const stopped = Date.now();
      const ids = load.acceptedIds();
      const files = await waitForAllWritten(pipeline.dir, ids);
      const drainMs = Date.now() - stopped;
      const counts = countIds(files);
      const stats = load.stats();

      const window = (from: number) => samples.filter((s) => s.second >= from && s.second < from + WINDOW_S);
      const base = window(WARM_UP_S);
      const last = window(DURATION_S - WINDOW_S);
      const figures = (app: 'api' | 'consumer') => ({
        base: average(base.map((s) => s[app])),
        last: average(last.map((s) => s[app])),
        peak: Math.max(...samples.map((s) => s[app])),
      });
      const memory = { api: figures('api'), consumer: figures('consumer') };
      const trouble = { api: troubleLines(api.app.logs), consumer: troubleLines(consumer.app.logs) };
      summary(`soak ${DURATION_S} s`, {
        requests: stats.requests,
        status201: stats.created,
        other: stats.requests - stats.created,
        skippedTicks: load.skippedTicks,
        posted: stats.posted,
        entriesPerSecond: stats.accepted / DURATION_S,
        p50Ms: stats.p50Ms,
        p99Ms: stats.p99Ms,
        maxMs: stats.maxMs,
        drainAfterStopMs: drainMs,
        lost: ids.filter((id) => !counts.has(id)).length,
        duplicatedIds: duplicates(counts).ids,
        warnOrErrorLines: trouble.api.length + trouble.consumer.length,
        rssSamples: samples.length,
        apiRssMb: `${memory.api.base.toFixed(1)}->${memory.api.last.toFixed(1)} (peak ${memory.api.peak.toFixed(1)})`,
        consumerRssMb: `${memory.consumer.base.toFixed(1)}->${memory.consumer.last.toFixed(1)} (peak ${memory.consumer.peak.toFixed(1)})`,
        apiGrowth: memory.api.last / memory.api.base,
        consumerGrowth: memory.consumer.last / memory.consumer.base,
      });

      expect(stats.created).toBe(stats.requests);
      expect(stats.requests).toBeGreaterThanOrEqual(RATE.requestsPerSecond * DURATION_S * 0.9);
      expect(load.skippedTicks).toBe(0);
      expect(trouble).toEqual({ api: [], consumer: [] });
      expect(ids.every((id) => counts.get(id) === 1)).toBe(true);
      expect(sampleErrors).toEqual([]);
      expect(base.length).toBeGreaterThanOrEqual(WINDOW_S - 1);
      expect(last.length).toBeGreaterThanOrEqual(WINDOW_S - 1);
      expect(memory.api.last).toBeLessThanOrEqual(MAX_GROWTH * memory.api.base);
      expect(memory.consumer.last).toBeLessThanOrEqual(MAX_GROWTH * memory.consumer.base);
      expect(api.app.running && consumer.app.running).toBe(true);
    },
    DURATION_S * 1_000 + CASE_TIMEOUT_MS,
  );
});

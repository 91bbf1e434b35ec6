import {
  countIds,
  fetchMetrics,
  metricValue,
  waitFor,
  waitForAllWritten,
  waitForHealth,
  writtenCount,
} from '@app/testing';
import {
  CASE_TIMEOUT_MS,
  FaultCase,
  breakFolder,
  completeFileCount,
  duplicates,
  holdFault,
  pick,
  summary,
} from './fault-kit';

const RATE = { requestsPerSecond: 20, entriesPerRequest: 10 };

async function entriesWritten(consumerUrl: string): Promise<number> {
  return metricValue(await fetchMetrics(consumerUrl), 'consumer_entries_written_total') ?? 0;
}

describe('the output folder becomes unwritable mid-stream, then writable again', () => {
  const run = new FaultCase();

  afterEach(() => run.dispose());

  // Without SINK_FSYNC the staged files are written on the sink's staging thread: its errors too.
  it.each(['true', 'false'])(
    'acknowledges nothing meanwhile, /health turns 503 and back, and loses nothing (SINK_FSYNC=%s)',
    async (sinkFsync) => {
      const holdMs = pick(6_000, 3_000);
      const pipeline = await run.pipelineFor(`faults-folder-fsync-${sinkFsync}`);
      const { dir } = pipeline;
      const api = await pipeline.startApi();
      // A small prefetch: once the consumer holds 20 unacknowledged deliveries a shard, the rest wait in the queues.
      const consumer = await pipeline.startConsumer({ PREFETCH: '20', BATCH_FLUSH_MS: '200', SINK_FSYNC: sinkFsync });
      const load = run.startLoad(api.url, { ...RATE, label: `folder-fsync-${sinkFsync}` });
      await waitFor(async () => (await writtenCount(dir)) >= 300, {
        description: '300 entries written before the folder breaks',
        timeoutMs: 20_000,
      });

      const broken = await breakFolder(dir);
      const brokeAt = Date.now();
      let during: { files: number[]; written: number[]; queued: number[]; health503Ms: number };
      try {
        const health503Ms = await waitForHealth(consumer.url, 503, 'consumer', 5_000);
        await consumer.app.waitForLog(/could not write \d+ entries/, 10_000);
        // From here on, nothing may complete: no new batch file, no entry counted written, so no ack.
        const files = [await completeFileCount(broken.aside)];
        const written = [await entriesWritten(consumer.url)];
        const queued = [await pipeline.queuedMessages()];
        await holdFault(brokeAt + holdMs - Date.now());
        files.push(await completeFileCount(broken.aside));
        written.push(await entriesWritten(consumer.url));
        queued.push(await pipeline.queuedMessages());
        during = { files, written, queued, health503Ms };
      } finally {
        await broken.restore();
      }
      const restoredAt = Date.now();
      const health200Ms = await waitForHealth(consumer.url, 200, 'consumer');
      await waitFor(
        async () => load.createdSince(restoredAt) >= 20 && (await entriesWritten(consumer.url)) > during.written[1],
        {
          description: 'entries written again after the folder came back',
          timeoutMs: 15_000,
        },
      );
      await load.stop();

      const ids = load.acceptedIds();
      const files = await waitForAllWritten(dir, ids);
      const counts = countIds(files);
      const stats = load.stats();
      const failures = consumer.app.logs.match(/could not write \d+ entries/g)?.length ?? 0;
      summary(`output folder unwritable ${holdMs / 1000} s, SINK_FSYNC=${sinkFsync}`, {
        requests: stats.requests,
        status201: stats.created,
        posted: stats.posted,
        filesWhileBroken: `${during.files[0]}->${during.files[1]}`,
        writtenWhileBroken: `${during.written[0]}->${during.written[1]}`,
        queuedWhileBroken: `${during.queued[0]}->${during.queued[1]}`,
        writeFailuresLogged: failures,
        health503Ms: during.health503Ms,
        health200Ms,
        lost: ids.filter((id) => !counts.has(id)).length,
        duplicatedIds: duplicates(counts).ids,
      });
      expect(stats.created).toBe(stats.requests);
      expect(during.files[1]).toBe(during.files[0]);
      expect(during.written[1]).toBe(during.written[0]);
      // The api kept accepting; the broker kept what the consumer could not take.
      expect(during.queued[1]).toBeGreaterThan(during.queued[0]);
      expect(failures).toBeGreaterThan(0);
      expect(ids.every((id) => counts.has(id))).toBe(true);
      expect(consumer.app.running).toBe(true);
    },
    CASE_TIMEOUT_MS,
  );
});

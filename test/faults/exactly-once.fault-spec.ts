import { type Pipeline, countIds, waitForAllWritten, waitForHealth } from '@app/testing';
import {
  CASE_TIMEOUT_MS,
  FaultCase,
  type Load,
  duplicates,
  holdFault,
  pick,
  summary,
  waitForProgress,
} from './fault-kit';

/**
 * The contract's exactly-once rule (docs/exactly-once.md) under the faults that used to copy
 * entries: every entry answered 201 is in exactly one complete file (lost = 0 and dup = 0).
 */
const RATE = { requestsPerSecond: 20, entriesPerRequest: 10 };
// A small prefetch and quick partial flushes keep deliveries in every state when the fault comes:
// queued, buffered, being written, written but not yet acknowledged.
const CONSUMER_ENV = { PREFETCH: '20', BATCH_FLUSH_MS: '200' };
const KILLS = 3;
const CUT_MS = 3_000;

type Consumer = Awaited<ReturnType<Pipeline['startConsumer']>>;

describe('exactly once: no entry lost, none written twice', () => {
  const run = new FaultCase();

  afterEach(() => run.dispose());

  /** Stops the load, waits for every accepted entry, reports lost and dup, and asserts both are 0. */
  async function expectExactlyOnce(name: string, pipeline: Pipeline, load: Load, figures = {}): Promise<void> {
    await load.stop();
    const ids = load.acceptedIds();
    const files = await waitForAllWritten(pipeline.dir, ids);
    const counts = countIds(files);
    const stats = load.stats();
    const lost = ids.filter((id) => !counts.has(id)).length;
    const dup = duplicates(counts);
    // Entries the consumers found in complete files on a redelivery: the copies the ledger prevented.
    const skipped = pipeline.processes
      .filter((app) => app.name === 'consumer')
      .flatMap((app) => [...app.logs.matchAll(/skipped (\d+) entries/g)])
      .reduce((sum, match) => sum + Number(match[1]), 0);
    summary(name, {
      requests: stats.requests,
      status201: stats.created,
      accepted: ids.length,
      lost,
      dup: dup.extraCopies,
      duplicatedIds: dup.ids,
      skippedAsWritten: skipped,
      maxRequestMs: stats.maxMs,
      ...figures,
    });
    // The api never waits on a consumer: a killed or cut one costs no request its 201.
    expect(stats.created).toBe(stats.requests);
    expect({ lost, dup: dup.extraCopies }).toEqual({ lost: 0, dup: 0 });
    // Files hold nothing the api did not accept.
    expect(counts.size).toBe(ids.length);
  }

  // Without SINK_FSYNC the staged files are written on the sink's staging thread: killed with it too.
  it.each(['true', 'false'])(
    'SIGKILL three times mid-stream, one consumer restarted each time (SINK_FSYNC=%s)',
    async (sinkFsync) => {
      const pipeline = await run.pipelineFor(`faults-once-kill-fsync-${sinkFsync}`);
      const api = await pipeline.startApi();
      const env = { ...CONSUMER_ENV, SINK_FSYNC: sinkFsync };
      let consumer = await pipeline.startConsumer(env);
      const load = run.startLoad(api.url, { ...RATE, label: `once-kill-fsync-${sinkFsync}` });

      for (let kill = 1; kill <= KILLS; kill++) {
        await waitForProgress(pipeline.dir, pick(400, 300));
        expect(await consumer.app.stop('SIGKILL')).toBeNull();
        consumer = await pipeline.startConsumer(env);
      }
      await waitForProgress(pipeline.dir, pick(400, 300));
      await expectExactlyOnce(`exactly once, sigkill x${KILLS}, one consumer, SINK_FSYNC=${sinkFsync}`, pipeline, load);
    },
    CASE_TIMEOUT_MS,
  );

  it(
    'SIGKILL three times mid-stream, two competing consumers over one folder, the killed one restarted',
    async () => {
      const pipeline = await run.pipelineFor('faults-once-kill-two');
      const api = await pipeline.startApi();
      const consumers: Consumer[] = [
        await pipeline.startConsumer(CONSUMER_ENV),
        await pipeline.startConsumer(CONSUMER_ENV),
      ];
      const load = run.startLoad(api.url, { ...RATE, label: 'once-two' });

      for (let kill = 0; kill < KILLS; kill++) {
        await waitForProgress(pipeline.dir, pick(400, 300));
        // Each in turn: the survivor takes the victim's deliveries while it restarts.
        const victim = kill % 2;
        expect(await consumers[victim].app.stop('SIGKILL')).toBeNull();
        consumers[victim] = await pipeline.startConsumer(CONSUMER_ENV);
      }
      await waitForProgress(pipeline.dir, pick(400, 300));
      await expectExactlyOnce(`exactly once, sigkill x${KILLS}, two consumers`, pipeline, load);
    },
    CASE_TIMEOUT_MS,
  );

  it(
    'one of two consumers loses the broker mid-stream (TCP proxy cut): its deliveries go to the other',
    async () => {
      const pipeline = await run.pipelineFor('faults-once-cut');
      const link = await run.brokerProxy();
      const api = await pipeline.startApi();
      const cut = await pipeline.startConsumer({ ...CONSUMER_ENV, RABBITMQ_URL: link.url });
      await pipeline.startConsumer(CONSUMER_ENV);
      const load = run.startLoad(api.url, { ...RATE, label: 'once-cut' });

      await waitForProgress(pipeline.dir, pick(400, 300));
      const cutAt = Date.now();
      link.proxy.cut();
      await waitForHealth(cut.url, 503, 'the cut consumer', CUT_MS);
      await holdFault(cutAt + CUT_MS - Date.now());
      link.proxy.restore();
      const backMs = await waitForHealth(cut.url, 200, 'the cut consumer');
      await waitForProgress(pipeline.dir, pick(400, 300));
      expect(cut.app.running).toBe(true);
      await expectExactlyOnce('exactly once, broker cut of one of two consumers', pipeline, load, {
        consumerHealthBackMs: backMs,
      });
    },
    CASE_TIMEOUT_MS,
  );
});

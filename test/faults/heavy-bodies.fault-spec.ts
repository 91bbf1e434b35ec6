import { countIds, entryTimestamp, fetchMetrics, metricValue, waitForAllWritten } from '@app/testing';
import { CASE_TIMEOUT_MS, FaultCase, duplicates, pick, summary } from './fault-kit';

/**
 * Many clients send a large body at the same moment (docs/hostile-clients.md, "admission"). The
 * api used to parse, validate and publish all of them in one turn of its event loop: no timer,
 * no /health answer and no heartbeat for seconds (200 bodies of 10,000 entries: RabbitMQ closed
 * the connection for missed heartbeats and every request got 503). This burst stalled it 2.2 s;
 * with the admission, 0.4 s.
 */
const CLIENTS = pick(40, 20);
const ENTRIES = 5_000;
/** The longest the api's event loop may stall while the bodies are worked on. */
const LAG_MAX_S = 1;

function body(client: number): string {
  return JSON.stringify(
    Array.from({ length: ENTRIES }, (_, i) => ({
      timestamp: entryTimestamp((50 + i) * 1000),
      value: `client ${client} entry ${i} ${'x'.repeat(40)}`,
    })),
  );
}

describe('many large bodies at once', () => {
  const run = new FaultCase();

  afterEach(() => run.dispose());

  it(
    `${CLIENTS} bodies of ${ENTRIES} entries at once: the event loop never stalls ${LAG_MAX_S} s, the broker connection holds, every 201 id is written once`,
    async () => {
      const pipeline = await run.pipelineFor('faults-heavy-bodies');
      const api = await pipeline.startApi();
      const bodies = Array.from({ length: CLIENTS }, (_, client) => body(client));

      // The api's own event-loop delay (prom-client's, reset by each read of /metrics): timed from
      // here, /health would also count this process's delay in sending the bodies.
      const lagMax = async () => metricValue(await fetchMetrics(api.url), 'nodejs_eventloop_lag_max_seconds') ?? NaN;
      await lagMax();
      const started = Date.now();
      const answers = await Promise.all(
        bodies.map(async (text) => {
          const response = await fetch(`${api.url}/message`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: text,
          });
          const json = (await response.json()) as { ids?: string[]; message?: string };
          return { status: response.status, retryAfter: response.headers.get('retry-after'), ...json };
        }),
      );
      const burstMs = Date.now() - started;
      const lagMaxS = await lagMax();

      const created = answers.filter((answer) => answer.status === 201);
      const busy = answers.filter((answer) => answer.status === 503);
      const ids = created.flatMap((answer) => answer.ids ?? []);
      await pipeline.startConsumer({ BATCH_SIZE: '500', SINK_FSYNC: 'false' });
      const counts = countIds(await waitForAllWritten(pipeline.dir, ids));
      const dup = duplicates(counts);
      summary('heavy bodies at once', {
        clients: CLIENTS,
        entriesEach: ENTRIES,
        status201: created.length,
        status503: busy.length,
        burstMs,
        eventLoopLagMaxS: lagMaxS.toFixed(3),
        lost: ids.filter((id) => !counts.has(id)).length,
        duplicatedIds: dup.ids,
      });

      expect(created.length + busy.length).toBe(CLIENTS);
      expect(created.length).toBeGreaterThan(0);
      // A 503 here is the admission's, never a lost broker: it says so and asks for a retry.
      for (const answer of busy) {
        expect(answer.retryAfter).toBe('1');
        expect(answer.message).toMatch(/^the api is busy/);
      }
      expect(api.app.logs).not.toMatch(/not reachable|Disconnected/);
      expect(lagMaxS).toBeLessThan(LAG_MAX_S);
      expect(ids.every((id) => counts.get(id) === 1)).toBe(true);
      expect(counts.size).toBe(ids.length);
    },
    CASE_TIMEOUT_MS,
  );
});

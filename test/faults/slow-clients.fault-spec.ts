import { SlowClient, waitFor } from '@app/testing';
import { CASE_TIMEOUT_MS, FaultCase, summary } from './fault-kit';

/** Short, so that the case stays short; the contract's default is 30 s. */
const REQUEST_TIMEOUT_MS = 3_000;
/** What the contract allows past REQUEST_TIMEOUT_MS for a slow socket to be closed. */
const CLOSE_WITHIN_MS = REQUEST_TIMEOUT_MS + 5_000;
const SLOW_CLIENTS = 300;
/** A declared body the slow clients never finish: 900 KB, under the default MAX_BODY_BYTES. */
const DECLARED_BYTES = 900_000;

describe('300 connections trickle their bodies while valid traffic runs', () => {
  const run = new FaultCase();
  const slow: SlowClient[] = [];

  afterEach(async () => {
    for (const client of slow.splice(0)) client.destroy();
    await run.dispose();
  });

  it(
    `answers every valid request 201 (p99 under 1 s) and closes every slow socket within REQUEST_TIMEOUT_MS + 5 s`,
    async () => {
      const pipeline = await run.pipelineFor('faults-slow-clients');
      const api = await pipeline.startApi({ REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS) });
      const load = run.startLoad(api.url, { requestsPerSecond: 20, entriesPerRequest: 10, label: 'beside-slow' });
      await waitFor(() => load.stats().created >= 20, { description: 'valid traffic flowing', timeoutMs: 10_000 });

      const openedAt = new Map<SlowClient, number>();
      for (let i = 0; i < SLOW_CLIENTS; i++) {
        const client = await SlowClient.connect(api.url);
        slow.push(client);
        openedAt.set(client, Date.now());
        client.write(SlowClient.postHead(DECLARED_BYTES) + '[{"timestamp":"2019-10-12T08:10:53Z","value":"');
        client.trickle('x'.repeat(1_000), 200);
      }
      const allOpenAt = Date.now();
      await waitFor(() => slow.every((client) => client.isClosed), {
        description: `the api to close all ${SLOW_CLIENTS} slow sockets`,
        timeoutMs: CLOSE_WITHIN_MS + 5_000,
        intervalMs: 100,
      });
      // Valid traffic a little past the last close, then every answer in.
      const lastCloseAt = Math.max(...slow.map((client) => client.closedAt ?? Infinity));
      await waitFor(() => load.createdSince(lastCloseAt) >= 20, {
        description: 'valid traffic after the slow sockets are gone',
        timeoutMs: 10_000,
      });
      await load.stop();

      const heldMs = slow.map((client) => (client.closedAt ?? Infinity) - (openedAt.get(client) ?? 0));
      const statuses = new Map<string, number>();
      for (const client of slow) {
        const status = String(client.status ?? 'none');
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
      }
      const stats = load.stats();
      const duringSlow = load.records.filter((r) => r.startedAt >= allOpenAt && r.startedAt <= lastCloseAt).length;
      summary('slow clients beside valid traffic', {
        slowSockets: SLOW_CLIENTS,
        requestTimeoutMs: REQUEST_TIMEOUT_MS,
        slowAnswers: [...statuses].map(([status, count]) => `${status}x${count}`).join(','),
        slowHeldMinMs: Math.min(...heldMs),
        slowHeldMaxMs: Math.max(...heldMs),
        validRequests: stats.requests,
        validDuringSlow: duringSlow,
        status201: stats.created,
        p50Ms: stats.p50Ms,
        p99Ms: stats.p99Ms,
        maxMs: stats.maxMs,
      });

      expect(stats.created).toBe(stats.requests);
      expect(stats.p99Ms).toBeLessThan(1_000);
      expect(duringSlow).toBeGreaterThan(0);
      expect(Math.max(...heldMs)).toBeLessThanOrEqual(CLOSE_WITHIN_MS);
      expect(Math.min(...heldMs)).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 100);
      expect(statuses.get('408')).toBe(SLOW_CLIENTS);
      expect(api.app.running).toBe(true);
    },
    CASE_TIMEOUT_MS,
  );
});

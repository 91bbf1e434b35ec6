import { waitFor } from './wait-for';

/** The status of GET `<url>/health`, or 0 when it cannot be reached. */
export async function healthStatus(url: string): Promise<number> {
  try {
    return (await fetch(`${url}/health`, { signal: AbortSignal.timeout(2_000) })).status;
  } catch {
    return 0;
  }
}

/** Waits until GET `<url>/health` answers `status`; resolves with the time it took. `what` names the app. */
export async function waitForHealth(url: string, status: number, what: string, timeoutMs = 20_000): Promise<number> {
  const started = Date.now();
  await waitFor(async () => (await healthStatus(url)) === status, {
    description: `${what} /health to answer ${status}`,
    timeoutMs,
    intervalMs: 100,
  });
  return Date.now() - started;
}

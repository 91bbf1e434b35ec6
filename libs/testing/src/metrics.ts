import type { WorkersResponse } from '@app/contracts';

/**
 * The sum of every sample of `name` in a Prometheus text exposition whose labels include
 * `labels` (in any order); undefined when there is none.
 */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  let sum: number | undefined;
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match === null || match[1] !== name) continue;
    const present = new Map([...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([key, value]) => present.get(key) === value)) {
      sum = (sum ?? 0) + Number(match[3]);
    }
  }
  return sum;
}

/** GET `<baseUrl>/metrics` as text; fails after `timeoutMs`. */
export async function fetchMetrics(baseUrl: string, timeoutMs = 5_000): Promise<string> {
  const response = await fetch(`${baseUrl}/metrics`, { signal: AbortSignal.timeout(timeoutMs) });
  if (response.status !== 200) throw new Error(`GET /metrics answered ${response.status}`);
  return response.text();
}

/** GET `<consumerUrl>/workers`: every worker of every shard, live and retired; fails after `timeoutMs`. */
export async function fetchWorkers(consumerUrl: string, timeoutMs = 5_000): Promise<WorkersResponse> {
  const response = await fetch(`${consumerUrl}/workers`, { signal: AbortSignal.timeout(timeoutMs) });
  if (response.status !== 200) throw new Error(`GET /workers answered ${response.status}`);
  return (await response.json()) as WorkersResponse;
}

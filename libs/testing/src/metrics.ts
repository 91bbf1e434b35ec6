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

/** The live-worker counts seen by a PoolSampler, across every sample of every shard. */
export interface PoolBounds {
  /** GET /workers answered 200 this many times (each counts in the consumer's http metrics). */
  polls: number;
  /** Polls that listed at least one shard. */
  samples: number;
  /** Fewest and most live workers any shard had in any sample. */
  minLive: number;
  maxLive: number;
}

/**
 * Polls GET /workers every `intervalMs` while a load runs, so that a bound on the pools is
 * checked during the load and not only once it is over. `stop()` resolves with what it saw;
 * a failed poll is not a sample.
 */
export class PoolSampler {
  private readonly bounds: PoolBounds = { polls: 0, samples: 0, minLive: Infinity, maxLive: -Infinity };
  private running = true;
  private readonly loop: Promise<void>;

  constructor(
    private readonly consumerUrl: string,
    private readonly intervalMs = 200,
  ) {
    this.loop = this.run();
  }

  async stop(): Promise<PoolBounds> {
    this.running = false;
    await this.loop;
    return { ...this.bounds };
  }

  private async run(): Promise<void> {
    while (this.running) {
      try {
        const { shards } = await fetchWorkers(this.consumerUrl, 2_000);
        this.bounds.polls++;
        for (const shard of shards) {
          const live = shard.workers.filter((worker) => worker.state === 'active').length;
          this.bounds.minLive = Math.min(this.bounds.minLive, live);
          this.bounds.maxLive = Math.max(this.bounds.maxLive, live);
        }
        if (shards.length > 0) this.bounds.samples++;
      } catch {
        // The consumer is busy or restarting: this tick is no sample.
      }
      await new Promise((resolve) => setTimeout(resolve, this.intervalMs));
    }
  }
}

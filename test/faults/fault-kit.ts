import { readdir, rename, unlink, writeFile } from 'node:fs/promises';
import {
  type Accepted,
  Pipeline,
  type PipelineOptions,
  TcpProxy,
  type TestEntry,
  spreadEntries,
  testBrokerUrl,
  waitFor,
  writtenCount,
} from '@app/testing';

/** `FAULTS_SHORT=1`: fewer faults, smaller loads, a 10 s soak; the same assertions. */
export const SHORT = process.env.FAULTS_SHORT === '1';

/** The full figure, or the short variant's. */
export function pick<T>(full: T, short: T): T {
  return SHORT ? short : full;
}

/**
 * A case's jest timeout: well above the deadline of any one wait in it (the longest, for every
 * entry to be in a file, is 60 s), so that a stuck case fails on the wait that names what did not
 * happen rather than on jest's anonymous timeout.
 */
export const CASE_TIMEOUT_MS = 180_000;

/** One line per case, e.g. `[faults] sigkill: posted=4000 created=4000 duplicates=37`. */
export function summary(name: string, figures: Record<string, unknown>): void {
  const text = Object.entries(figures)
    .map(
      ([key, value]) =>
        `${key}=${typeof value === 'number' && !Number.isInteger(value) ? value.toFixed(2) : String(value)}`,
    )
    .join(' ');
  console.log(`[faults${SHORT ? ' short' : ''}] ${name}: ${text}`);
}

/** What one request of a Load got back. */
export interface RequestRecord {
  /** The HTTP status, or 0 when the request failed (refused, reset, or aborted at its deadline). */
  status: number;
  startedAt: number;
  ms: number;
  entries: TestEntry[];
  /** The ids of a 201, in request order; empty otherwise. */
  ids: string[];
  retryAfter: string | null;
  error?: string;
}

export interface LoadOptions {
  requestsPerSecond: number;
  entriesPerRequest: number;
  /** Each request is aborted after this long: a hung request is a recorded failure, not a hung test. */
  requestTimeoutMs?: number;
  /** Requests in flight at most; a tick that finds this many is counted as skipped, not queued. */
  maxInFlight?: number;
  label?: string;
}

/**
 * POSTs `entriesPerRequest` entries `requestsPerSecond` times a second to `<url>/message` until
 * stopped, recording every answer. Each entry's value is unique (`<label>-<request>-<index>`), so
 * an entry can be found in the files even when its request got no ids back.
 */
export class Load {
  readonly records: RequestRecord[] = [];
  skippedTicks = 0;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly timer: NodeJS.Timeout;
  private sequence = 0;
  private stopping?: Promise<void>;

  private constructor(
    private readonly url: string,
    private readonly options: Required<LoadOptions>,
  ) {
    this.timer = setInterval(() => this.tick(), 1000 / options.requestsPerSecond);
  }

  static start(url: string, options: LoadOptions): Load {
    return new Load(url, { requestTimeoutMs: 10_000, maxInFlight: 100, label: 'load', ...options });
  }

  /** Stops sending and resolves once every request in flight has its answer; safe to call twice. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      clearInterval(this.timer);
      while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
    })();
    return this.stopping;
  }

  /** Every request answered 201, as the testing library's Accepted (for shardsById). */
  get accepted(): Accepted[] {
    return this.records.filter((r) => r.status === 201).map(({ ids, entries }) => ({ ids, entries }));
  }

  /** Every id the api answered 201 for. */
  acceptedIds(): string[] {
    return this.records.flatMap((r) => r.ids);
  }

  /** How many requests were answered 201 after `since` (epoch ms). */
  createdSince(since: number): number {
    return this.records.filter((r) => r.status === 201 && r.startedAt >= since).length;
  }

  stats() {
    const by = (status: number) => this.records.filter((r) => r.status === status).length;
    const times = this.records.map((r) => r.ms).sort((a, b) => a - b);
    const at = (q: number) =>
      times.length === 0 ? 0 : times[Math.min(times.length - 1, Math.floor(q * times.length))];
    return {
      requests: this.records.length,
      /** Entries sent, whatever the answer. */
      posted: this.records.reduce((sum, r) => sum + r.entries.length, 0),
      /** Entries answered 201. */
      accepted: this.records.reduce((sum, r) => sum + r.ids.length, 0),
      created: by(201),
      unavailable: by(503),
      failed: by(0),
      other: this.records.filter((r) => ![0, 201, 503].includes(r.status)).length,
      p50Ms: Math.round(at(0.5)),
      p99Ms: Math.round(at(0.99)),
      maxMs: Math.round(times.at(-1) ?? 0),
    };
  }

  private tick(): void {
    if (this.inFlight.size >= this.options.maxInFlight) {
      this.skippedTicks++;
      return;
    }
    const sequence = ++this.sequence;
    const entries = spreadEntries(this.options.entriesPerRequest, `${this.options.label}-${sequence}`, sequence);
    const request = this.send(entries);
    this.inFlight.add(request);
    void request.finally(() => this.inFlight.delete(request));
  }

  private async send(entries: TestEntry[]): Promise<void> {
    const startedAt = Date.now();
    const started = performance.now();
    const record: RequestRecord = { status: 0, startedAt, ms: 0, entries, ids: [], retryAfter: null };
    try {
      const response = await fetch(`${this.url}/message`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(entries),
        signal: AbortSignal.timeout(this.options.requestTimeoutMs),
      });
      const body = (await response.json()) as { ids?: string[] };
      record.status = response.status;
      record.retryAfter = response.headers.get('retry-after');
      if (response.status === 201 && Array.isArray(body.ids)) record.ids = body.ids;
    } catch (error) {
      record.error = error instanceof Error ? error.message : String(error);
    }
    record.ms = performance.now() - started;
    this.records.push(record);
  }
}

/** How many ids occur more than once, and how many copies beyond the first there are in all. */
export function duplicates(counts: Map<string, number>): { ids: number; extraCopies: number } {
  let ids = 0;
  let extraCopies = 0;
  for (const count of counts.values()) {
    if (count > 1) {
      ids++;
      extraCopies += count - 1;
    }
  }
  return { ids, extraCopies };
}

/** Complete batch files (`*.jsonl`) under `dir`, at any depth. */
/** Waits until `more` entries beyond what is written now are in files under `dir`. */
export async function waitForProgress(dir: string, more: number): Promise<void> {
  const target = (await writtenCount(dir)) + more;
  await waitFor(async () => (await writtenCount(dir)) >= target, {
    description: `${more} more entries written under ${dir}`,
    timeoutMs: 30_000,
    intervalMs: 100,
  });
}

export async function completeFileCount(dir: string): Promise<number> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((entry) => entry.isFile() && entry.name.endsWith('.jsonl')).length;
}

/** Holds a fault for its stated duration: the one kind of plain sleep this suite allows. */
export function holdFault(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Makes `dir` unwritable the way a lost mount does: the folder moves aside and a regular file
 * takes its path (root ignores permission bits, so chmod would prove nothing). Resolves with the
 * function that puts the folder back; call it exactly once.
 */
export async function breakFolder(dir: string): Promise<{ aside: string; restore: () => Promise<void> }> {
  const aside = `${dir}.aside`;
  await rename(dir, aside);
  await writeFile(dir, 'the output folder is away\n');
  return {
    aside,
    restore: async () => {
      await unlink(dir);
      await rename(aside, dir);
    },
  };
}

/**
 * What one fault case opens, closed after it whatever happened: the loads first, then the proxies,
 * then the pipelines (their processes, queues and output folders). Each step runs even if one
 * before failed. A pipeline, once disposed, starts nothing more, so a case body that runs on past
 * jest's timeout cannot bring back the queues it deleted.
 */
export class FaultCase {
  private pipelines: Pipeline[] = [];
  private loads: Load[] = [];
  private proxies: TcpProxy[] = [];

  async pipelineFor(name: string, options?: PipelineOptions): Promise<Pipeline> {
    const pipeline = await Pipeline.create(name, options);
    this.pipelines.push(pipeline);
    return pipeline;
  }

  startLoad(url: string, options: LoadOptions): Load {
    const load = Load.start(url, options);
    this.loads.push(load);
    return load;
  }

  /** A proxy to the test broker, and the RABBITMQ_URL that goes through it. */
  async brokerProxy(): Promise<{ proxy: TcpProxy; url: string }> {
    const proxy = await TcpProxy.forAmqpUrl(testBrokerUrl());
    this.proxies.push(proxy);
    return { proxy, url: proxy.amqpUrlFor(testBrokerUrl()) };
  }

  async dispose(): Promise<void> {
    const [loads, proxies, pipelines] = [this.loads, this.proxies, this.pipelines];
    [this.loads, this.proxies, this.pipelines] = [[], [], []];
    const failures: unknown[] = [];
    for (const step of [
      () => Promise.all(loads.map((load) => load.stop())),
      () => Promise.all(proxies.map((proxy) => proxy.close())),
      () => Promise.all(pipelines.map((pipeline) => pipeline.dispose())),
    ]) {
      try {
        await step();
      } catch (error) {
        failures.push(error);
      }
    }
    if (failures.length > 0) throw new AggregateError(failures, 'cleaning up a fault case failed');
  }
}

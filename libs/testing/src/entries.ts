import { shardOf } from '@app/sharding';

export interface TestEntry {
  timestamp: string;
  value?: string;
}

/** Where test entries' timestamps start: 2019-10-12T08:10:00Z, the morning of the task's example. */
export const ENTRY_EPOCH_MS = Date.UTC(2019, 9, 12, 8, 10, 0);

/** The RFC 3339 timestamp `offsetMs` after ENTRY_EPOCH_MS. */
export function entryTimestamp(offsetMs: number): string {
  return new Date(ENTRY_EPOCH_MS + offsetMs).toISOString();
}

/**
 * `count` valid entries `stepMs` apart from `startMs` after the epoch (by default 137 ms apart,
 * so over many seconds and every shard), each with the unique value `<label>-<index>`.
 */
export function makeEntries(count: number, label = 'v', { stepMs = 137, startMs = 0 } = {}): TestEntry[] {
  return Array.from({ length: count }, (_, i) => ({
    timestamp: entryTimestamp(startMs + i * stepMs),
    value: `${label}-${i}`,
  }));
}

/**
 * `count` valid entries one second apart (with a varying fraction) from `startSecond` seconds
 * after the epoch, so that every request reaches every shard; each value is `<label>-<index>`.
 */
export function spreadEntries(count: number, label: string, startSecond = 0): TestEntry[] {
  return Array.from({ length: count }, (_, i) => ({
    timestamp: entryTimestamp((startSecond + i) * 1000 + ((i * 137) % 1000)),
    value: `${label}-${i}`,
  }));
}

/** A valid timestamp, the first whole second after the epoch (plus `millis`), that falls in `shard`. */
export function timestampInShard(shard: number, shardsCount: number, millis = 250): string {
  for (let second = 0; ; second++) {
    const timestamp = entryTimestamp(second * 1000 + millis);
    if (shardOf(timestamp, shardsCount) === shard) return timestamp;
  }
}

export interface Accepted {
  ids: string[];
  entries: TestEntry[];
}

/** POSTs `entries` to the api at `baseUrl`; throws unless it answers 201, resolves with the ids. */
export async function postEntries(
  baseUrl: string,
  entries: TestEntry[],
  headers: Record<string, string> = {},
): Promise<Accepted> {
  const response = await fetch(`${baseUrl}/message`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(entries),
  });
  const body = (await response.json()) as { ids?: string[] };
  if (response.status !== 201 || !Array.isArray(body.ids)) {
    throw new Error(`POST /message answered ${response.status}: ${JSON.stringify(body)}`);
  }
  return { ids: body.ids, entries };
}

/** The shard of every accepted id, for checking that files land in the right shard. */
export function shardsById(accepted: readonly Accepted[], shardsCount: number): Map<string, number> {
  const byId = new Map<string, number>();
  for (const { ids, entries } of accepted) {
    ids.forEach((id, i) => byId.set(id, shardOf(entries[i].timestamp, shardsCount)));
  }
  return byId;
}

/** POSTs `requests` requests of `perRequest` entries, ten at a time; every one must get a 201. */
export async function postMany(baseUrl: string, requests: number, perRequest: number): Promise<Accepted[]> {
  const accepted: Accepted[] = [];
  for (let i = 0; i < requests; i += 10) {
    const wave = Array.from({ length: Math.min(10, requests - i) }, (_, j) =>
      postEntries(baseUrl, makeEntries(perRequest, `r${i + j}`)),
    );
    accepted.push(...(await Promise.all(wave)));
  }
  return accepted;
}

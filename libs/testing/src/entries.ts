import { shardOf } from '@app/sharding';

export interface TestEntry {
  timestamp: string;
  value?: string;
}

/** `count` valid entries with timestamps spread over many seconds (and so over every shard). */
export function makeEntries(count: number, label = 'v'): TestEntry[] {
  const base = Date.UTC(2019, 9, 12, 8, 10, 0);
  return Array.from({ length: count }, (_, i) => ({
    timestamp: new Date(base + i * 137).toISOString(),
    value: `${label}-${i}`,
  }));
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

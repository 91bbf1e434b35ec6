import { parseRfc3339Seconds } from '@app/rfc3339';

/** `a mod n` with the sign of `n`, so negative seconds (before 1970) still land in 0..n-1. */
export function floorMod(a: number, n: number): number {
  return ((a % n) + n) % n;
}

/** The shard of a point in time: whole Unix seconds modulo the shard count. */
export function shardOfSeconds(unixSeconds: number, shardsCount: number): number {
  return floorMod(unixSeconds, shardsCount);
}

/** The shard of an RFC 3339 timestamp; throws on text that is not one (validate first). */
export function shardOf(timestamp: string, shardsCount: number): number {
  const seconds = parseRfc3339Seconds(timestamp);
  if (seconds === null) {
    throw new RangeError(`not an RFC 3339 date-time with a time zone: ${JSON.stringify(timestamp)}`);
  }
  return shardOfSeconds(seconds, shardsCount);
}

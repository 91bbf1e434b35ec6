import { floorMod, shardOf, shardOfSeconds } from './shard';

describe('shard math', () => {
  it.each([
    [0, 5, 0],
    [7, 5, 2],
    [-1, 5, 4],
    [-5, 5, 0],
    [-6, 5, 4],
    [123, 1, 0],
  ])('floorMod(%d, %d) is %d', (a, n, expected) => {
    expect(floorMod(a, n)).toBe(expected);
    expect(shardOfSeconds(a, n)).toBe(expected);
  });

  it.each([
    ['2019-10-12T08:10:53.52Z', 5, 3],
    ['2019-10-12T08:10:52.52Z', 5, 2],
    ['2019-10-12T08:10:54.52Z', 5, 4],
    ['2019-10-12T10:10:54.999+02:00', 5, 4],
    ['1969-12-31T23:59:59.999Z', 5, 4],
    ['1969-12-31T23:59:55Z', 5, 0],
    ['1970-01-01T00:00:00.001Z', 5, 0],
  ])('%s with %d shards is shard %d', (timestamp, shards, expected) => {
    expect(shardOf(timestamp, shards)).toBe(expected);
  });

  it('refuses to shard text that is not a timestamp', () => {
    expect(() => shardOf('yesterday', 5)).toThrow(RangeError);
    expect(() => shardOf('yesterday', 5)).toThrow('not an RFC 3339 date-time with a time zone: "yesterday"');
  });
});

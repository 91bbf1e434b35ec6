import { shardOf } from '@app/sharding';
import { makeEntries, spreadEntries, timestampInShard } from './entries';

describe('entry generators', () => {
  it('makeEntries: unique values, valid timestamps stepMs apart from startMs after the epoch', () => {
    const entries = makeEntries(3, 'x', { stepMs: 1_000, startMs: 53_520 });
    expect(entries).toEqual([
      { timestamp: '2019-10-12T08:10:53.520Z', value: 'x-0' },
      { timestamp: '2019-10-12T08:10:54.520Z', value: 'x-1' },
      { timestamp: '2019-10-12T08:10:55.520Z', value: 'x-2' },
    ]);
  });

  it('spreadEntries: a request of 5 or more reaches every one of 5 shards', () => {
    const shards = new Set(spreadEntries(5, 'r', 17).map((e) => shardOf(e.timestamp, 5)));
    expect([...shards].sort()).toEqual([0, 1, 2, 3, 4]);
  });

  it('timestampInShard: a timestamp of the shard asked for', () => {
    for (let shard = 0; shard < 7; shard++) expect(shardOf(timestampInShard(shard, 7), 7)).toBe(shard);
  });
});

import { Registry } from 'prom-client';
import type { RabbitmqConfig } from '@app/config';
import type { WireEntry } from '@app/contracts';
import type { ShardPublisher } from '../broker/shard-publisher.service';
import type { KeyedAttempt } from '../idempotency/idempotency.service';
import { ApiMetrics } from '../metrics/api.metrics';
import { IngestService } from './ingest.service';

describe('IngestService with an Idempotency-Key', () => {
  it('uses the ids the key fixes, in request order, and hands the attempt to every publish', async () => {
    const published: { shard: number; entries: WireEntry[]; keyed: unknown }[] = [];
    const publisher = {
      publish: (shard: number, entries: WireEntry[], keyed: unknown) => {
        published.push({ shard, entries, keyed });
        return Promise.resolve();
      },
    };
    const keyed = { ids: { entryId: (index: number) => `key-${index}` }, expiresAt: 1 } as unknown as KeyedAttempt;
    const service = new IngestService(
      { shardsCount: 5 } as RabbitmqConfig,
      publisher as unknown as ShardPublisher,
      new ApiMetrics(new Registry()),
    );

    const answer = await service.accept(
      [{ timestamp: '2019-10-12T08:10:53Z' }, { timestamp: '2019-10-12T08:10:54Z', value: 'v' }],
      keyed,
    );

    expect(answer).toEqual({ accepted: 2, ids: ['key-0', 'key-1'] });
    expect(published.flatMap(({ entries }) => entries.map(({ id }) => id)).sort()).toEqual(['key-0', 'key-1']);
    expect(published.map(({ keyed: attempt }) => attempt)).toEqual([keyed, keyed]);
  });
});

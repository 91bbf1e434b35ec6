import { Inject, Injectable } from '@nestjs/common';
import { type ConfigType } from '@nestjs/config';
import { randomUUID } from 'node:crypto';
import { rabbitmqConfig } from '@app/config';
import type { CreateEntryDto, WireEntry } from '@app/contracts';
import { shardOf } from '@app/sharding';
import { ShardPublisher } from '../broker/shard-publisher.service';
import type { KeyedAttempt } from '../idempotency/idempotency.service';
import { ApiMetrics } from '../metrics/api.metrics';

export interface AcceptedEntries {
  accepted: number;
  ids: string[];
}

/**
 * Takes in a validated request: gives every entry an id, groups the entries by shard and has the
 * ShardPublisher publish each shard's group (in messages within the contract's limits).
 */
@Injectable()
export class IngestService {
  constructor(
    @Inject(rabbitmqConfig.KEY) private readonly rabbitmq: ConfigType<typeof rabbitmqConfig>,
    private readonly publisher: ShardPublisher,
    private readonly metrics: ApiMetrics,
  ) {}

  /**
   * Resolves once the broker has confirmed every message of every shard; ids are in request order.
   * A request with an Idempotency-Key (`keyed`) gets the ids its key fixes, each time it is tried.
   */
  async accept(entries: CreateEntryDto[], keyed?: KeyedAttempt): Promise<AcceptedEntries> {
    const byShard = new Map<number, WireEntry[]>();
    const ids = entries.map(({ timestamp, value }, index) => {
      const id = keyed === undefined ? randomUUID() : keyed.ids.entryId(index);
      const shard = shardOf(timestamp, this.rabbitmq.shardsCount);
      const wire: WireEntry = value == null ? { id, timestamp } : { id, timestamp, value };
      const group = byShard.get(shard);
      if (group) group.push(wire);
      else byShard.set(shard, [wire]);
      return id;
    });
    // Shards publish concurrently: one confirm round-trip per request, not per shard.
    await Promise.all([...byShard].map(([shard, group]) => this.publisher.publish(shard, group, keyed)));
    this.metrics.entriesAccepted.inc(ids.length);
    return { accepted: ids.length, ids };
  }
}

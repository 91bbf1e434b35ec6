/** Shard `n` lives in the durable queue `<prefix>.shard.<n>`. */
export function shardQueueName(prefix: string, shard: number): string {
  return `${prefix}.shard.${shard}`;
}

/** Poison messages of every shard go here. */
export function deadLetterQueueName(prefix: string): string {
  return `${prefix}.dead-letter`;
}

export function allShardQueueNames(prefix: string, shardsCount: number): string[] {
  return Array.from({ length: shardsCount }, (_, shard) => shardQueueName(prefix, shard));
}

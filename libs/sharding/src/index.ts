export * from './shard';
export * from './queue-names';

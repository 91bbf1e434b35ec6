export * from './rfc3339';
export * from './shard';
export * from './queue-names';

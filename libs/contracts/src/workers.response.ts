/** A worker of a shard's pool as the consumer's `GET /workers` shows it. */
export interface WorkerRecord {
  id: string;
  processed: number;
  state: 'active' | 'retired';
  reason: 'idle' | 'timeout' | 'shutdown' | null;
}

/** The body of the consumer's `GET /workers`. */
export interface WorkersResponse {
  shards: Array<{ shard: number; workers: WorkerRecord[] }>;
}

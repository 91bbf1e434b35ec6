/** Why a worker retired: idle above the pool's minimum, its write timed out, or the app shut down. */
export type RetireReason = 'idle' | 'timeout' | 'shutdown';

/** A worker of a shard's pool as the consumer's `GET /workers` shows it. */
export interface WorkerRecord {
  id: string;
  processed: number;
  state: 'active' | 'retired';
  reason: RetireReason | null;
}

/** The body of the consumer's `GET /workers`. */
export interface WorkersResponse {
  shards: Array<{ shard: number; workers: WorkerRecord[] }>;
}

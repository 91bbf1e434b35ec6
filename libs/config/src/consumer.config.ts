import { configNamespace } from './config-namespace';
import { ConfigValidationError, readBoolean, readHost, readInt, readShardList, readString } from './env';
import { type RabbitmqConfig, readRabbitmqConfig } from './rabbitmq.config';

/**
 * The consumer's own variables; `CONSUMER_SHARDS` is checked against `rabbitmq.shardsCount`
 * (readConsumerAppConfig passes the RabbitMQ configuration it has already read).
 */
export function readConsumerConfig(
  env: NodeJS.ProcessEnv = process.env,
  { shardsCount }: Pick<RabbitmqConfig, 'shardsCount'> = readRabbitmqConfig(env),
) {
  const workersMin = readInt(env, 'WORKERS_MIN', 3, { min: 1, max: 256 });
  const workersMax = readInt(env, 'WORKERS_MAX', 4, { min: 1, max: 256 });
  if (workersMax < workersMin) {
    throw new ConfigValidationError(
      'WORKERS_MIN',
      String(workersMin),
      `expected a whole number no larger than WORKERS_MAX (${workersMax})`,
    );
  }
  return {
    host: readHost(env, 'CONSUMER_HOST', '0.0.0.0'),
    port: readInt(env, 'CONSUMER_PORT', 3001, { min: 0, max: 65_535 }),
    dataOutputDir: readString(env, 'DATA_OUTPUT_DIR', './data'),
    shards: readShardList(env, 'CONSUMER_SHARDS', shardsCount),
    workersMin,
    workersMax,
    batchSize: readInt(env, 'BATCH_SIZE', 5, { min: 1, max: 1_000_000 }),
    batchFlushMs: readInt(env, 'BATCH_FLUSH_MS', 1_000, { min: 1, max: 3_600_000 }),
    // A write's time includes its wait for libuv's 4 threads behind the other workers' writes: at
    // 10 or 100 ms with 256 workers on 3 shards every write timed out and nothing was ever written.
    workerTimeoutMs: readInt(env, 'WORKER_TIMEOUT_MS', 10_000, { min: 100, max: 3_600_000 }),
    prefetch: readInt(env, 'PREFETCH', 200, { min: 1, max: 65_535 }),
    sinkFsync: readBoolean(env, 'SINK_FSYNC', true),
  };
}

export type ConsumerConfig = ReturnType<typeof readConsumerConfig>;
export const consumerConfig = configNamespace<ConsumerConfig>('consumer');

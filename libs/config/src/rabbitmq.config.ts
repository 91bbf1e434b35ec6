import { configNamespace } from './config-namespace';
import { ConfigValidationError, readAmqpUrls, readEnum, readInt, readQueuePrefix } from './env';

export const QUEUE_TYPES = ['classic', 'quorum'] as const;
export type QueueType = (typeof QUEUE_TYPES)[number];

export const MAX_SHARDS = 1024;

export function readRabbitmqConfig(env: NodeJS.ProcessEnv = process.env) {
  const urls = readAmqpUrls(env, 'RABBITMQ_URL', 'amqp://guest:guest@localhost:5672');
  const queueType = readEnum<QueueType>(env, 'QUEUE_TYPE', 'classic', QUEUE_TYPES);
  if (urls.length > 1 && queueType !== 'quorum') {
    // A classic queue lives on one node: with that node down the apps cannot even declare it.
    throw new ConfigValidationError(
      'QUEUE_TYPE',
      queueType,
      `RABBITMQ_URL lists ${urls.length} nodes of a cluster, which needs quorum (a classic queue lives on one node and goes with it)`,
    );
  }
  return {
    /** Every node of the cluster, as listed; one item for a single broker. The apps connect through nodeOrder(). */
    urls,
    /** The first node: for tools and tests that need one broker. */
    url: urls[0],
    shardsCount: readInt(env, 'SHARDS_COUNT', 5, { min: 1, max: MAX_SHARDS }),
    queuePrefix: readQueuePrefix(env, 'QUEUE_PREFIX', 'messages'),
    queueType,
  };
}

export type RabbitmqConfig = ReturnType<typeof readRabbitmqConfig>;
/** The broker and the shard layout; both apps must agree on every field. */
export const rabbitmqConfig = configNamespace<RabbitmqConfig>('rabbitmq');

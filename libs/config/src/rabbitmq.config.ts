import { configNamespace } from './config-namespace';
import { readAmqpUrl, readEnum, readInt, readQueuePrefix } from './env';

export const QUEUE_TYPES = ['classic', 'quorum'] as const;
export type QueueType = (typeof QUEUE_TYPES)[number];

export const MAX_SHARDS = 1024;

export function readRabbitmqConfig(env: NodeJS.ProcessEnv = process.env) {
  return {
    url: readAmqpUrl(env, 'RABBITMQ_URL', 'amqp://guest:guest@localhost:5672'),
    shardsCount: readInt(env, 'SHARDS_COUNT', 5, { min: 1, max: MAX_SHARDS }),
    queuePrefix: readQueuePrefix(env, 'QUEUE_PREFIX', 'messages'),
    queueType: readEnum<QueueType>(env, 'QUEUE_TYPE', 'classic', QUEUE_TYPES),
  };
}

export type RabbitmqConfig = ReturnType<typeof readRabbitmqConfig>;
/** The broker and the shard layout; both apps must agree on every field. */
export const rabbitmqConfig = configNamespace<RabbitmqConfig>('rabbitmq');

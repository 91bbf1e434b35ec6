import { readApiConfig } from './api.config';
import { readConsumerConfig } from './consumer.config';
import { readRabbitmqConfig } from './rabbitmq.config';
import { readRuntimeConfig } from './runtime.config';

/**
 * Every variable the api reads, each read once and validated; `main.ts` calls it before Nest
 * starts and hands the result to `AppConfigModule.forRoot`. Throws ConfigValidationError.
 */
export function readApiAppConfig(env: NodeJS.ProcessEnv = process.env) {
  return { rabbitmq: readRabbitmqConfig(env), api: readApiConfig(env), runtime: readRuntimeConfig(env) };
}

/** Every variable the consumer reads, each read once and validated (see readApiAppConfig). */
export function readConsumerAppConfig(env: NodeJS.ProcessEnv = process.env) {
  const rabbitmq = readRabbitmqConfig(env);
  return { rabbitmq, consumer: readConsumerConfig(env, rabbitmq), runtime: readRuntimeConfig(env) };
}

export type ApiAppConfig = ReturnType<typeof readApiAppConfig>;
export type ConsumerAppConfig = ReturnType<typeof readConsumerAppConfig>;

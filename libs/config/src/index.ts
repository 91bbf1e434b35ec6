export * from './env';
export * from './boot';
export * from './rabbitmq.config';
export * from './runtime.config';
export * from './api.config';
export * from './consumer.config';

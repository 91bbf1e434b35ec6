export * from './env';
export * from './lifecycle';
export * from './rabbitmq.config';
export * from './runtime.config';
export * from './api.config';
export * from './consumer.config';

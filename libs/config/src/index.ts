export * from './env';
export * from './config-namespace';
export * from './rabbitmq.config';
export * from './runtime.config';
export * from './api.config';
export * from './consumer.config';
export * from './app.config';
export * from './app-config.module';

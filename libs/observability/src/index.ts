export * from './logger';
export * from './describe-error';
export * from './metrics.module';
export * from './broker.metrics';

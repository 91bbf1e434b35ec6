export * from './logger';
export * from './describe-error';

export * from './rabbitmq.constants';
export * from './topology';
export * from './redact-url';
export * from './broker-outage-log';
export * from './node-order';

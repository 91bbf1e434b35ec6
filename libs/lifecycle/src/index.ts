export * from './boot-errors';
export * from './shutdown-backstop';
export * from './log-ready';

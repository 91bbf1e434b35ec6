export * from './boot-errors';
export * from './shutdown-backstop';

export * from './create-entry.dto';
export * from './entry.wire';
export * from './workers.response';

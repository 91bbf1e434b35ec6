export * from './directory-syncer';
export * from './fresh-run';

export * from './dto-fast-check';

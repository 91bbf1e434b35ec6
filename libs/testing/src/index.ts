export * from './wait-for';
export * from './tcp-proxy';
export * from './broker';
export * from './temp-dir';

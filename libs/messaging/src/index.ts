export * from './broker-connection';
export * from './confirm-publisher';
export * from './consumer';
export * from './dead-letters';
export * from './logger';
export * from './topology';
export * from './trace-context';

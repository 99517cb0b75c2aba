export * from './outbox';
export * from './outbox-relay';
export * from './outbox.migration';
export * from './outbox-fast-path.migration';
export * from './unit-of-work';

export * from './inbox';
export * from './inbox.migration';
export * from './unit-of-work';

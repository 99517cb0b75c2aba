export * from './inbox';
export * from './inbox.migration';

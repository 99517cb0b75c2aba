export * from './coordinator';
export * from './participant';
export * from './outgoing';
export * from './schema.migration';
export * from './protocol-config';
export * from './two-phase-commit.module';
export * from './observer';
export * from './protocol-metrics';

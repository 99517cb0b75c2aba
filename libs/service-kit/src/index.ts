export * from './bootstrap';
export * from './checkout-messaging';
export * from './config';
export * from './data-source';
export * from './health.controller';
export * from './message-handlers';
export * from './service-kit.module';
export * from './tokens';

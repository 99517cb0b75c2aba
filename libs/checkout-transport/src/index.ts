export * from './checkout-context';
export * from './checkout-messaging';
export * from './checkout-transport';
export * from './sender-verification';

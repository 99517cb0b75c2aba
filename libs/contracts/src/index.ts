export * from './envelope';
export * from './messages/common';
export * from './messages/prepare';
export * from './messages/vote';
export * from './messages/decision';
export * from './messages/ack';
export * from './messages/inquiry';
export * from './registry';

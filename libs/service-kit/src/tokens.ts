import type { ServiceName } from '@shop/contracts';
import type { BaseConfig } from './config';

/** Injection token for the validated configuration of the running service. */
export const SERVICE_CONFIG = Symbol('SERVICE_CONFIG');
/** Injection token for the name of the running service. */
export const SERVICE_NAME = Symbol('SERVICE_NAME');

export interface ServiceIdentity {
  name: ServiceName;
  config: BaseConfig;
}

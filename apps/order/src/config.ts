import { BaseConfig, loadConfig } from '@shop/service-kit';

/** The order service's settings, validated at boot. See apps/order/.env.example. */
export const OrderConfig = BaseConfig;
export type OrderConfig = typeof OrderConfig._output;

export const loadOrderConfig = () => loadConfig(OrderConfig);

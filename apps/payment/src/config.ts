import { BaseConfig, loadConfig } from '@shop/service-kit';

/** The payment service's settings, validated at boot. See apps/payment/.env.example. */
export const PaymentConfig = BaseConfig;
export type PaymentConfig = typeof PaymentConfig._output;

export const loadPaymentConfig = () => loadConfig(PaymentConfig);

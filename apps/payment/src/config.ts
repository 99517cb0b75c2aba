import { z } from 'zod';
import { BaseConfig, CustomerAuthConfig } from '@shop/service-kit';
import { ProtocolConfig } from '@shop/two-phase-commit';

/** The payment service's settings, validated at boot. See apps/payment/.env.example. */
export const PaymentConfig = BaseConfig.extend(ProtocolConfig.shape).extend(CustomerAuthConfig.shape);
export type PaymentConfig = z.infer<typeof PaymentConfig>;

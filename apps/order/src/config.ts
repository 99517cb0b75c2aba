import { z } from 'zod';
import { BaseConfig, loadConfig } from '@shop/service-kit';
import { ProtocolConfig } from '@shop/two-phase-commit';

/** The order service's settings, validated at boot. See apps/order/.env.example. */
export const OrderConfig = BaseConfig.extend(ProtocolConfig.shape).extend({
  /** The shop's one currency (ISO 4217); prices and totals are integer minor units of it. */
  CURRENCY: z
    .string()
    .regex(/^[A-Z]{3}$/, 'an ISO 4217 code')
    .default('EUR'),
});
export type OrderConfig = z.infer<typeof OrderConfig>;

export const loadOrderConfig = () => loadConfig(OrderConfig);

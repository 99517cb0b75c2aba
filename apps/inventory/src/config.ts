import { z } from 'zod';
import { BaseConfig } from '@shop/service-kit';
import { ProtocolConfig } from '@shop/two-phase-commit';

/** The inventory service's settings, validated at boot. See apps/inventory/.env.example. */
export const InventoryConfig = BaseConfig.extend(ProtocolConfig.shape);
export type InventoryConfig = z.infer<typeof InventoryConfig>;

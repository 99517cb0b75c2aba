import { BaseConfig, loadConfig } from '@shop/service-kit';

/** The inventory service's settings, validated at boot. See apps/inventory/.env.example. */
export const InventoryConfig = BaseConfig;
export type InventoryConfig = typeof InventoryConfig._output;

export const loadInventoryConfig = () => loadConfig(InventoryConfig);

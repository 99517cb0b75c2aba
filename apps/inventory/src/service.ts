import { defineService } from '@shop/service-kit';
import { InventoryConfig } from './config';
import { inventoryMigrations } from './migrations';

/** The inventory service as the kit runs it: its settings (validated here), database and entry points. */
export const inventory = defineService({ name: 'inventory', config: InventoryConfig, migrations: inventoryMigrations });

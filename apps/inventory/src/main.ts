import 'reflect-metadata';
import { bootstrapService } from '@shop/service-kit';
import { loadInventoryConfig } from './config';
import { InventoryModule } from './inventory.module';

bootstrapService(InventoryModule, { service: 'inventory', port: loadInventoryConfig().PORT }).catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});

// First: http, express and pg are traced only if they load after this.
import '@shop/service-kit/instrument';
import 'reflect-metadata';
import { bootstrapService } from '@shop/service-kit';
import { loadInventoryConfig } from './config';
import { InventoryModule } from './inventory.module';

bootstrapService(InventoryModule, { service: 'inventory', config: loadInventoryConfig() }).catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});

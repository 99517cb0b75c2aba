// First: http, express and pg are traced only if they load after this.
import '@shop/service-kit/instrument';
import { inventory } from './service';
import { InventoryModule } from './inventory.module';

void inventory.main(InventoryModule);

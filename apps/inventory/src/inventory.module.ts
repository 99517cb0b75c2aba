import { Module } from '@nestjs/common';
import { ServiceKitModule } from '@shop/service-kit';
import { loadInventoryConfig } from './config';
import { inventoryDataSourceOptions } from './data-source';

const config = loadInventoryConfig();

@Module({
  imports: [ServiceKitModule.forRoot({ service: 'inventory', config, dataSource: inventoryDataSourceOptions(config) })],
})
export class InventoryModule {}

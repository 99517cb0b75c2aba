import { Module } from '@nestjs/common';
import { ServiceKitModule } from '@shop/service-kit';
import { TwoPhaseCommitModule } from '@shop/two-phase-commit';
import { loadInventoryConfig } from './config';
import { inventoryDataSourceOptions } from './data-source';
import { StockController } from './stock/stock.controller';
import { StockReservations } from './stock/stock-reservations';

const config = loadInventoryConfig();

/** The inventory service: stock per SKU, and a checkout participant that reserves it. */
@Module({
  imports: [
    ServiceKitModule.forRoot({ service: 'inventory', config, dataSource: inventoryDataSourceOptions(config) }),
    TwoPhaseCommitModule.participant('inventory', StockReservations, config),
  ],
  controllers: [StockController],
})
export class InventoryModule {}

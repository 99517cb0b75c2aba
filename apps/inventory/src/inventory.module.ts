import { Module } from '@nestjs/common';
import { ServiceKitModule } from '@shop/service-kit';
import { TwoPhaseCommitModule } from '@shop/two-phase-commit';
import { StockController } from './stock/stock.controller';
import { StockReservations } from './stock/stock-reservations';
import { inventory } from './service';

/** The inventory service: stock per SKU, and a checkout participant that reserves it. */
@Module({
  imports: [
    ServiceKitModule.forRoot(inventory),
    TwoPhaseCommitModule.participant('inventory', StockReservations, inventory.config),
  ],
  controllers: [StockController],
})
export class InventoryModule {}

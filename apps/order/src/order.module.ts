import { Module } from '@nestjs/common';
import { CustomerTokens, ServiceKitModule } from '@shop/service-kit';
import { TwoPhaseCommitModule } from '@shop/two-phase-commit';
import { ProductsController } from './catalog/products.controller';
import { ConsoleMount } from './console/console-mount';
import { developmentControllers } from './dev/dev-tokens.controller';
import { InDoubtGauges, UnfinishedCheckoutsController } from './operator/operator.controller';
import { AdmissionControl } from './orders/admission-control';
import { CustomerLimits } from './orders/customer-limits';
import { DecisionListener } from './orders/decision-listener';
import { DecisionWaits } from './orders/decision-waits';
import { OrderDecisions } from './orders/order-decisions';
import { OrdersController } from './orders/orders.controller';
import { OrdersService } from './orders/orders.service';
import { order } from './service';

/** The order service: public REST API, price list, and the checkout's coordinator. */
@Module({
  imports: [ServiceKitModule.forRoot(order), TwoPhaseCommitModule.coordinator(OrderDecisions, order.config)],
  controllers: [
    ProductsController,
    OrdersController,
    UnfinishedCheckoutsController,
    ...developmentControllers(order.config),
  ],
  providers: [
    OrdersService,
    DecisionListener,
    DecisionWaits,
    AdmissionControl,
    CustomerLimits,
    CustomerTokens,
    InDoubtGauges,
    // The operators' console, on the management port (docs/console.md).
    ConsoleMount,
  ],
})
export class OrderModule {}

import { Module } from '@nestjs/common';
import { CustomerTokens, ServiceKitModule } from '@shop/service-kit';
import { TwoPhaseCommitModule } from '@shop/two-phase-commit';
import { ProductsController } from './catalog/products.controller';
import { loadOrderConfig } from './config';
import { developmentControllers } from './dev/dev-tokens.controller';
import { orderDataSourceOptions } from './data-source';
import { InDoubtGauges, UnfinishedCheckoutsController } from './operator/operator.controller';
import { AdmissionControl } from './orders/admission-control';
import { DecisionListener } from './orders/decision-listener';
import { DecisionWaits } from './orders/decision-waits';
import { OrderDecisions } from './orders/order-decisions';
import { OrdersController } from './orders/orders.controller';
import { OrdersService } from './orders/orders.service';

const config = loadOrderConfig();

/** The order service: public REST API, price list, and the checkout's coordinator. */
@Module({
  imports: [
    ServiceKitModule.forRoot({ service: 'order', config, dataSource: orderDataSourceOptions(config) }),
    TwoPhaseCommitModule.coordinator(OrderDecisions, config),
  ],
  controllers: [ProductsController, OrdersController, UnfinishedCheckoutsController, ...developmentControllers(config)],
  providers: [OrdersService, DecisionListener, DecisionWaits, AdmissionControl, CustomerTokens, InDoubtGauges],
})
export class OrderModule {}

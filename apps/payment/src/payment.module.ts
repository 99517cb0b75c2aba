import { Module } from '@nestjs/common';
import { CustomerTokens, ServiceKitModule } from '@shop/service-kit';
import { TwoPhaseCommitModule } from '@shop/two-phase-commit';
import { AccountsController } from './accounts/accounts.controller';
import { PaymentHolds } from './accounts/payment-holds';
import { loadPaymentConfig } from './config';
import { paymentDataSourceOptions } from './data-source';

const config = loadPaymentConfig();

/** The payment service: customer accounts, and a checkout participant that holds money. */
@Module({
  imports: [
    ServiceKitModule.forRoot({ service: 'payment', config, dataSource: paymentDataSourceOptions(config) }),
    TwoPhaseCommitModule.participant('payment', PaymentHolds, config),
  ],
  controllers: [AccountsController],
  providers: [CustomerTokens],
})
export class PaymentModule {}

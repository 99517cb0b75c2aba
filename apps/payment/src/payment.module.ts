import { Module } from '@nestjs/common';
import { CustomerTokens, ServiceKitModule } from '@shop/service-kit';
import { TwoPhaseCommitModule } from '@shop/two-phase-commit';
import { AccountsController } from './accounts/accounts.controller';
import { PaymentHolds } from './accounts/payment-holds';
import { payment } from './service';

/** The payment service: customer accounts, and a checkout participant that holds money. */
@Module({
  imports: [
    ServiceKitModule.forRoot(payment),
    TwoPhaseCommitModule.participant('payment', PaymentHolds, payment.config),
  ],
  controllers: [AccountsController],
  providers: [CustomerTokens],
})
export class PaymentModule {}

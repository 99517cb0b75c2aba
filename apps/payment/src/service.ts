import { defineService } from '@shop/service-kit';
import { Account } from './accounts/account.entity';
import { PaymentConfig } from './config';
import { paymentMigrations } from './migrations';

/** The payment service as the kit runs it: its settings (validated here), database and entry points. */
export const payment = defineService({
  name: 'payment',
  config: PaymentConfig,
  migrations: paymentMigrations,
  entities: [Account],
});

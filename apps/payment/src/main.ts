// First: http, express and pg are traced only if they load after this.
import '@shop/service-kit/instrument';
import 'reflect-metadata';
import { bootstrapService } from '@shop/service-kit';
import { loadPaymentConfig } from './config';
import { PaymentModule } from './payment.module';

bootstrapService(PaymentModule, { service: 'payment', config: loadPaymentConfig() }).catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});

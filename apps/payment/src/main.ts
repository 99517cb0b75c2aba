import 'reflect-metadata';
import { bootstrapService } from '@shop/service-kit';
import { loadPaymentConfig } from './config';
import { PaymentModule } from './payment.module';

bootstrapService(PaymentModule, { service: 'payment', port: loadPaymentConfig().PORT }).catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});

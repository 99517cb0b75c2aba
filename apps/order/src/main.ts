// First: http, express and pg are traced only if they load after this.
import '@shop/service-kit/instrument';
import 'reflect-metadata';
import { bootstrapService } from '@shop/service-kit';
import { loadOrderConfig } from './config';
import { OrderModule } from './order.module';

bootstrapService(OrderModule, { service: 'order', config: loadOrderConfig() }).catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});

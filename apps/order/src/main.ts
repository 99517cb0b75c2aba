import 'reflect-metadata';
import { bootstrapService } from '@shop/service-kit';
import { loadOrderConfig } from './config';
import { OrderModule } from './order.module';

bootstrapService(OrderModule, { service: 'order', port: loadOrderConfig().PORT }).catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});

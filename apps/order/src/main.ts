// First: http, express and pg are traced only if they load after this.
import '@shop/service-kit/instrument';
import { order } from './service';
import { OrderModule } from './order.module';

void order.main(OrderModule);

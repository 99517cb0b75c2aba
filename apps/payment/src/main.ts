// First: http, express and pg are traced only if they load after this.
import '@shop/service-kit/instrument';
import { payment } from './service';
import { PaymentModule } from './payment.module';

void payment.main(PaymentModule);

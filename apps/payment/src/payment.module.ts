import { Module } from '@nestjs/common';
import { ServiceKitModule } from '@shop/service-kit';
import { loadPaymentConfig } from './config';
import { paymentDataSourceOptions } from './data-source';

const config = loadPaymentConfig();

@Module({
  imports: [ServiceKitModule.forRoot({ service: 'payment', config, dataSource: paymentDataSourceOptions(config) })],
})
export class PaymentModule {}

import { Module } from '@nestjs/common';
import { ServiceKitModule } from '@shop/service-kit';
import { loadOrderConfig } from './config';
import { orderDataSourceOptions } from './data-source';

const config = loadOrderConfig();

@Module({
  imports: [ServiceKitModule.forRoot({ service: 'order', config, dataSource: orderDataSourceOptions(config) })],
})
export class OrderModule {}

import { DynamicModule, Logger, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import type { DataSourceOptions } from 'typeorm';
import type { ServiceName } from '@shop/contracts';
import { BrokerConnection } from '@shop/messaging';
import { CheckoutMessaging } from './checkout-messaging';
import type { BaseConfig } from './config';
import { HealthController } from './health.controller';
import { MessageHandlers } from './message-handlers';
import { OperatorController } from './operator.controller';
import { SERVICE_CONFIG, SERVICE_NAME } from './tokens';

export interface ServiceKitOptions {
  service: ServiceName;
  config: BaseConfig;
  dataSource: DataSourceOptions;
}

/**
 * What every service shares: its database, its broker connection, checkout messaging (outbox
 * relay, consumer, handler registry) and health endpoints. An app imports it once, with its config.
 */
@Module({})
export class ServiceKitModule {
  static forRoot(options: ServiceKitOptions): DynamicModule {
    return {
      module: ServiceKitModule,
      global: true,
      imports: [TypeOrmModule.forRoot({ ...options.dataSource, migrationsRun: false })],
      controllers: [HealthController, OperatorController],
      providers: [
        { provide: SERVICE_NAME, useValue: options.service },
        { provide: SERVICE_CONFIG, useValue: options.config },
        {
          provide: BrokerConnection,
          useFactory: () =>
            BrokerConnection.connect({
              url: options.config.AMQP_URL,
              connectionName: `${options.service} (pid ${process.pid})`,
              logger: new Logger(BrokerConnection.name),
            }),
        },
        MessageHandlers,
        CheckoutMessaging,
      ],
      exports: [SERVICE_NAME, SERVICE_CONFIG, BrokerConnection, MessageHandlers, CheckoutMessaging],
    };
  }
}

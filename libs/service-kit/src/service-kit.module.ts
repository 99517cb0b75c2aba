import { DynamicModule, Injectable, Logger, Module, OnApplicationShutdown } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DataSource, type DataSourceOptions } from 'typeorm';
import { PARTICIPANTS, type ServiceName } from '@shop/contracts';
import { BrokerConnection } from '@shop/messaging';
import { Transactions } from '@shop/outbox';
import { CheckoutMessaging } from '@shop/checkout-transport';
import { Registry } from 'prom-client';
import type { BaseConfig } from './config';
import { ManagementDatabase } from './management-database';
import { ManagementServer } from './management-server';
import { ServiceMetrics } from './metrics';
import { OperatorController } from './operator.controller';
import { ParticipantOperatorController } from './participant-operator.controller';
import { RequestDatabase } from './request-database';
import { Retention } from './retention';
import { serviceMessaging } from './service-messaging';
import { SERVICE_CONFIG, SERVICE_NAME } from './tokens';
import { stopTracing } from './tracing';

/** What the kit needs of a service: a `ServiceDefinition` (see `defineService`) is one. */
export interface ServiceKitOptions {
  name: ServiceName;
  config: BaseConfig;
  dataSource: DataSourceOptions;
}

/** Exports the spans still buffered when the service stops (after the HTTP server closed). */
@Injectable()
class TracingShutdown implements OnApplicationShutdown {
  onApplicationShutdown(): Promise<void> {
    return stopTracing();
  }
}

/**
 * What every service shares: its database, its broker connection, checkout messaging (outbox
 * relay, and the transport that hands consumed messages to the app's `@EventPattern` handlers),
 * health and metrics on a port of their own (`ManagementServer`), the operator's routes. An app imports it once, with its definition (`forRoot(service)`).
 */
@Module({})
export class ServiceKitModule {
  static forRoot(options: ServiceKitOptions): DynamicModule {
    return {
      module: ServiceKitModule,
      global: true,
      imports: [TypeOrmModule.forRoot({ ...options.dataSource, migrationsRun: false })],
      // Health and metrics are not among them: they are served by ManagementServer only.
      // A participant's own record of each checkout, for operators and the order service's console.
      controllers: [
        OperatorController,
        ...((PARTICIPANTS as readonly string[]).includes(options.name) ? [ParticipantOperatorController] : []),
      ],
      providers: [
        { provide: SERVICE_NAME, useValue: options.name },
        { provide: SERVICE_CONFIG, useValue: options.config },
        {
          provide: BrokerConnection,
          useFactory: () =>
            BrokerConnection.connect({
              urls: options.config.AMQP_URL,
              connectionName: `${options.name} (pid ${process.pid})`,
              logger: new Logger(BrokerConnection.name),
            }),
        },
        {
          provide: CheckoutMessaging,
          inject: [BrokerConnection, DataSource, ServiceMetrics, Retention],
          useFactory: (
            broker: BrokerConnection,
            dataSource: DataSource,
            metrics: ServiceMetrics,
            retention: Retention,
          ) => serviceMessaging(options.name, options.config, broker, dataSource, metrics, retention),
        },
        // The units of work of the service (their commits publish their outbox rows at once).
        { provide: Transactions, inject: [CheckoutMessaging], useFactory: (m: CheckoutMessaging) => m.transactions },
        // The metrics registry, for libraries that add metrics of their own (the protocol kit).
        { provide: Registry, inject: [ServiceMetrics], useFactory: (m: ServiceMetrics) => m.registry },
        // Its own connection, apart from the pool: probes and gauges never take one of the pool's.
        {
          provide: ManagementDatabase,
          useFactory: () =>
            new ManagementDatabase(options.config.DATABASE_URL, `${options.name} management (pid ${process.pid})`),
        },
        ManagementServer,
        ServiceMetrics,
        RequestDatabase,
        Retention,
        TracingShutdown,
      ],
      exports: [
        SERVICE_NAME,
        SERVICE_CONFIG,
        BrokerConnection,
        CheckoutMessaging,
        Transactions,
        Registry,
        ServiceMetrics,
        RequestDatabase,
        Retention,
        // For an app that mounts pages of its own on the management port (the order service's console).
        ManagementServer,
      ],
    };
  }
}

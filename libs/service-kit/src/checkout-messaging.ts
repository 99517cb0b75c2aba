import {
  BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  OnApplicationBootstrap,
  OnModuleInit,
} from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { ServiceName } from '@shop/contracts';
import {
  BrokerConnection,
  ConfirmPublisher,
  Consumer,
  declareTopology,
  ServiceTopology,
  topologyFor,
} from '@shop/messaging';
import { pruneInbox } from '@shop/inbox';
import { OutboxRelay, Transactions } from '@shop/outbox';
import { CheckoutTransport, decodeCheckoutMessage } from '@shop/checkout-transport';
import type { BaseConfig } from './config';
import { ServiceMetrics } from './metrics';
import { Retention } from './retention';
import { SERVICE_CONFIG, SERVICE_NAME } from './tokens';
import { isTransientDatabaseError } from './transient-errors';

/**
 * A service's whole messaging life: declares its topology, opens its units of work (`transactions`:
 * each publishes its outbox rows right after its commit, with the relay as the safety net), and
 * holds the transport that consumes its queue
 * (connected to the app by `bootstrapService`: the handlers are the app's `@EventPattern`s). On
 * shutdown it drains in the order that loses nothing: stop consuming and finish the batch in
 * hand, flush the outbox, then close the broker connection (the database closes after, with the
 * TypeORM module).
 */
@Injectable()
export class CheckoutMessaging implements OnModuleInit, OnApplicationBootstrap, BeforeApplicationShutdown {
  readonly topology: ServiceTopology;
  /** Consumes the service's queue once the app starts its microservices. */
  readonly transport: CheckoutTransport;
  /** Opens every transaction of the service that may send messages: once committed, they are published at once. */
  readonly transactions: Transactions;
  private readonly publisher: ConfirmPublisher;
  private readonly relay: OutboxRelay;

  constructor(
    @Inject(SERVICE_NAME) service: ServiceName,
    @Inject(SERVICE_CONFIG) config: BaseConfig,
    private readonly broker: BrokerConnection,
    dataSource: DataSource,
    metrics: ServiceMetrics,
    retention: Retention,
  ) {
    this.topology = topologyFor(service);
    this.publisher = new ConfirmPublisher(broker, this.topology.exchange);
    this.relay = new OutboxRelay({
      dataSource,
      publish: (messages) => this.publisher.publish(messages),
      brokerAvailable: () => this.publisher.isAvailable,
      logger: new Logger(OutboxRelay.name),
      pollIntervalMs: config.OUTBOX_POLL_INTERVAL_MS,
      retentionMs: config.OUTBOX_RETENTION_HOURS * 3600_000,
      onSent: (lagSeconds) => metrics.sent(lagSeconds),
    });
    this.transactions = new Transactions(dataSource, {
      publishCommitted: (messages) => this.relay.publishCommitted(messages),
    });
    this.transport = new CheckoutTransport(broker, {
      transactions: this.transactions,
      topology: this.topology,
      prefetch: config.AMQP_PREFETCH,
      batchSize: config.MESSAGE_BATCH_SIZE,
      retry: {
        maxAttempts: config.MESSAGE_MAX_ATTEMPTS,
        delaysMs: [100, 500, 2_000, 5_000],
        isTransient: isTransientDatabaseError,
      },
      decode: (content, delivery) => decodeCheckoutMessage(service, content, delivery),
      logger: new Logger(Consumer.name),
      onSettled: (settlement) => metrics.settled(settlement),
    });
    // Handled message ids are forgotten past retention, so the inbox does not grow without bound.
    retention.register('inbox', () => pruneInbox(dataSource, config.INBOX_RETENTION_HOURS * 3600_000));
  }

  async onModuleInit(): Promise<void> {
    // Topology first, so the queue exists before anything consumes or publishes.
    await this.broker.onConnect(async (connection) => {
      const channel = await connection.createChannel();
      await declareTopology(channel, this.topology);
      await channel.close();
    });
    await this.publisher.start();
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.relay.start();
    // What waited for the broker goes as soon as it is back (after the publisher's own setup).
    await this.broker.onConnect(async () => this.relay.wake());
  }

  /** Nest closes the microservices only after this hook: the transport is stopped here, first. */
  async beforeApplicationShutdown(): Promise<void> {
    await this.transport.close();
    await this.relay.stop();
    await this.publisher.stop();
    await this.broker.close();
  }

  /** Whether the service's queue is being consumed (readiness). */
  get isConsuming(): boolean {
    return this.transport.isConsuming;
  }

  /** Publishes what is committed in the outbox now (tests, shutdown). */
  flushOutbox(): Promise<number> {
    return this.relay.drain();
  }
}

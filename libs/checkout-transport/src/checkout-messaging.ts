import { BeforeApplicationShutdown, Logger, OnApplicationBootstrap, OnModuleInit } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import type { CheckoutMessage, ServiceName } from '@shop/contracts';
import {
  BrokerConnection,
  ConfirmPublisher,
  Consumer,
  declareTopology,
  type PackLimits,
  type ServiceTopology,
  type Settlement,
  topologyFor,
} from '@shop/messaging';
import { OutboxRelay, Transactions } from '@shop/outbox';
import { CheckoutTransport } from './checkout-transport';
import { decodeCheckoutMessage } from './sender-verification';

/** A retried delivery waits this long before its next attempt (the last delay repeats). */
const RETRY_DELAYS_MS = [100, 500, 2_000, 5_000];

export interface CheckoutMessagingOptions {
  service: ServiceName;
  broker: BrokerConnection;
  dataSource: DataSource;
  /** Unacked deliveries at once: the batch being handled and the next one gathering. */
  prefetch: number;
  /** At most this many deliveries are handled in one unit of work. */
  batchSize: number;
  /** Attempts of a delivery that fails transiently before it is dead-lettered. */
  maxAttempts: number;
  /** Whether a handler's error is worth another attempt (a lost connection, a deadlock) rather than a dead letter. */
  isTransient: (error: unknown) => boolean;
  outboxPollIntervalMs: number;
  /** Sent outbox rows are pruned past this. */
  outboxRetentionMs: number;
  /**
   * How many messages of one routing key go in one broker message, in how many bytes (default
   * `DEFAULT_PACK_LIMITS`); `maxMessages: 1` sends each alone, for readers older than packing.
   */
  packLimits?: PackLimits;
  /** Metrics hooks: messages published (each this many seconds after it was written), a delivery settled. */
  onSent?: (lagSeconds: readonly number[]) => void;
  onSettled?: (settlement: Settlement<CheckoutMessage>) => void;
}

/**
 * A service's whole checkout messaging life: checks its (provisioned) topology, opens its units of work
 * (`transactions`: each publishes its outbox rows right after its commit, with the relay as the
 * safety net), and holds the transport that consumes its queue, each delivery's sender verified
 * (connect it to the app with `connectCheckoutTransport`: the handlers are the app's
 * `@EventPattern`s). Its hooks are Nest's (the service kit provides it). On shutdown it drains
 * in the order that loses nothing: stop consuming and finish the batch in hand, flush the
 * outbox, then close the broker connection (the database closes after, with the TypeORM module).
 */
export class CheckoutMessaging implements OnModuleInit, OnApplicationBootstrap, BeforeApplicationShutdown {
  readonly topology: ServiceTopology;
  /** Consumes the service's queue once the app starts its microservices. */
  readonly transport: CheckoutTransport;
  /** Opens every transaction of the service that may send messages: once committed, they are published at once. */
  readonly transactions: Transactions;
  private readonly broker: BrokerConnection;
  private readonly publisher: ConfirmPublisher;
  private readonly relay: OutboxRelay;

  constructor(options: CheckoutMessagingOptions) {
    const { service, broker, dataSource } = options;
    this.broker = broker;
    this.topology = topologyFor(service);
    this.publisher = new ConfirmPublisher(broker, this.topology.exchange, options.packLimits);
    this.relay = new OutboxRelay({
      dataSource,
      publish: (messages) => this.publisher.publish(messages),
      brokerAvailable: () => this.publisher.isAvailable,
      logger: new Logger(OutboxRelay.name),
      pollIntervalMs: options.outboxPollIntervalMs,
      retentionMs: options.outboxRetentionMs,
      onSent: options.onSent,
    });
    this.transactions = new Transactions(dataSource, {
      publishCommitted: (messages) => this.relay.publishCommitted(messages),
    });
    this.transport = new CheckoutTransport(broker, {
      transactions: this.transactions,
      topology: this.topology,
      prefetch: options.prefetch,
      batchSize: options.batchSize,
      retry: { maxAttempts: options.maxAttempts, delaysMs: RETRY_DELAYS_MS, isTransient: options.isTransient },
      decode: (content, delivery) => decodeCheckoutMessage(service, content, delivery),
      logger: new Logger(Consumer.name),
      onSettled: options.onSettled,
    });
  }

  async onModuleInit(): Promise<void> {
    // Topology first: the service stops at boot, naming what is missing, if the broker lacks any of it.
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

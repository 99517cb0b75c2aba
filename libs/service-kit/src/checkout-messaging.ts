import {
  BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  OnApplicationBootstrap,
  OnModuleInit,
} from '@nestjs/common';
import { DataSource } from 'typeorm';
import {
  ALLOWED_SENDERS,
  CheckoutMessage,
  compareCodePoints,
  parseCheckoutMessage,
  ServiceName,
} from '@shop/contracts';
import { trace } from '@opentelemetry/api';
import {
  addLogContext,
  BatchEntry,
  BatchOutcome,
  BrokerConnection,
  ConfirmPublisher,
  Consumer,
  declareTopology,
  Delivery,
  ForgedMessageError,
  PoisonMessageError,
  ServiceTopology,
  topologyFor,
} from '@shop/messaging';
import { inOneTransaction, pruneInbox } from '@shop/inbox';
import { OutboxPublisher, OutboxRelay } from '@shop/outbox';
import type { BaseConfig } from './config';
import { HandlerContext, MessageHandlers } from './message-handlers';
import { ServiceMetrics } from './metrics';
import { Retention } from './retention';
import { SERVICE_CONFIG, SERVICE_NAME } from './tokens';
import { isTransientDatabaseError } from './transient-errors';

/**
 * A service's whole messaging life: declares its topology, publishes its outbox (right after each
 * commit, with the relay as the safety net), consumes its queue in batches and dispatches each
 * checkout message to the registered handler, all of a batch in one database transaction. On
 * shutdown it drains in the order that loses nothing: stop consuming and finish the batch in
 * hand, flush the outbox, then close the broker connection (the database closes after, with the
 * TypeORM module).
 */
@Injectable()
export class CheckoutMessaging implements OnModuleInit, OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(CheckoutMessaging.name);
  readonly topology: ServiceTopology;
  private readonly publisher: ConfirmPublisher;
  private readonly relay: OutboxRelay;
  private readonly consumer: Consumer<CheckoutMessage>;

  constructor(
    @Inject(SERVICE_NAME) private readonly service: ServiceName,
    @Inject(SERVICE_CONFIG) private readonly config: BaseConfig,
    private readonly broker: BrokerConnection,
    private readonly dataSource: DataSource,
    private readonly handlers: MessageHandlers,
    metrics: ServiceMetrics,
    retention: Retention,
  ) {
    this.topology = topologyFor(service);
    this.publisher = new ConfirmPublisher(broker, this.topology.exchange);
    this.relay = new OutboxRelay({
      dataSource,
      publish: (messages) => this.publisher.publish(messages),
      logger: new Logger(OutboxRelay.name),
      pollIntervalMs: config.OUTBOX_POLL_INTERVAL_MS,
      retentionMs: config.OUTBOX_RETENTION_HOURS * 3600_000,
      onSent: (lagSeconds) => metrics.sent(lagSeconds),
    });
    this.consumer = new Consumer<CheckoutMessage>(broker, {
      topology: this.topology,
      prefetch: config.AMQP_PREFETCH,
      batchSize: config.MESSAGE_BATCH_SIZE,
      retry: {
        maxAttempts: config.MESSAGE_MAX_ATTEMPTS,
        delaysMs: [100, 500, 2_000, 5_000],
        isTransient: isTransientDatabaseError,
      },
      decode: (content, delivery) => decodeCheckoutMessage(service, content, delivery),
      handleBatch: (batch) => this.handleBatch(batch),
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
    // Every transaction of this service that writes to the outbox publishes it once committed.
    this.dataSource.subscribers.push(new OutboxPublisher(this.relay));
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.relay.start();
    await this.consumer.start();
    this.logger.log(`consuming ${this.topology.queue}`);
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.consumer.stop();
    await this.relay.stop();
    await this.publisher.stop();
    await this.broker.close();
  }

  /** Whether the service's queue is being consumed (readiness). */
  get isConsuming(): boolean {
    return this.consumer.isConsuming;
  }

  /** Publishes what is committed in the outbox now (tests, shutdown). */
  flushOutbox(): Promise<number> {
    return this.relay.drain();
  }

  /**
   * One transaction for the batch (each message alone if one fails: see `inOneTransaction`), in one
   * global lock order: by transaction id (the messages of one transaction keep their order), so
   * two batches lock the protocol's rows in the same order and cannot deadlock each other.
   */
  private async handleBatch(batch: ReadonlyArray<BatchEntry<CheckoutMessage>>): Promise<BatchOutcome[]> {
    // Array sort is stable: messages of one transaction keep their delivery order.
    const byTransaction = [...batch.keys()].sort((a, b) =>
      compareCodePoints(batch[a].message.transactionId, batch[b].message.transactionId),
    );
    const results = await inOneTransaction<number, void, CheckoutMessage>(
      this.dataSource,
      byTransaction,
      (index, unit) =>
        batch[index].within(() => this.dispatch(batch[index].message, { ...unit, delivery: batch[index].delivery })),
      (index) => batch[index].message,
    );
    const outcomes = new Array<BatchOutcome>(batch.length);
    byTransaction.forEach((index, position) => (outcomes[index] = results[position]));
    return outcomes;
  }

  private async dispatch(message: CheckoutMessage, context: HandlerContext): Promise<void> {
    const handler = this.handlers.get(message.type);
    if (!handler) throw new PoisonMessageError(`${this.service} has no handler for '${message.type}' messages`);
    await handler(message, context);
  }
}

/**
 * Parses and authenticates a delivery for `recipient`. The broker validated the publisher's user
 * id; each service publishes as the broker user named like it, so `sender` must match it and be
 * allowed to send this type (a prepare or decision only from the coordinator, and so on). Once
 * parsed, the checkout's transaction id joins the delivery's log context and span.
 */
export function decodeCheckoutMessage(recipient: ServiceName, content: Buffer, delivery: Delivery): CheckoutMessage {
  let raw: unknown;
  try {
    raw = JSON.parse(content.toString('utf8'));
  } catch {
    throw new PoisonMessageError('body is not JSON');
  }
  const message = parseCheckoutMessage(raw);
  addLogContext({ transactionId: message.transactionId, messageType: message.type });
  trace.getActiveSpan()?.setAttribute('checkout.transaction_id', message.transactionId);
  if (message.recipient !== recipient) {
    throw new PoisonMessageError(`addressed to ${message.recipient}, not ${recipient}`);
  }
  if (!ALLOWED_SENDERS[message.type].includes(message.sender)) {
    throw new ForgedMessageError(`a ${message.type} may not come from ${message.sender}`);
  }
  if (delivery.userId !== message.sender) {
    throw new ForgedMessageError(
      `sender ${message.sender} not verified: published by broker user ${delivery.userId ?? '(none)'}`,
    );
  }
  return message;
}

import { Controller, INestApplication, Module } from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import { randomUUID } from 'node:crypto';
import * as amqp from 'amqplib';
import { CheckoutMessage, createMessage, Inquiry, MessageOfType, Vote } from '@shop/contracts';
import {
  BrokerConnection,
  declareTopology,
  HEADERS,
  PoisonMessageError,
  Settlement,
  silentLogger,
  topologyFor,
} from '@shop/messaging';
import { eventually } from '../../../test/support/eventually';
import { testEnv } from '../../../test/support/env';
import { createTestSchema, TestSchema } from '../../../test/support/postgres';
import { adminChannel, deleteExchangeAndQueues, drainQueue, uniqueExchange } from '../../../test/support/rabbitmq';
import { Transactions } from '@shop/outbox';
import { BaseConfig, createServiceApp } from '@shop/service-kit';
import {
  CheckoutContext,
  CheckoutEventPattern,
  CheckoutTransport,
  connectCheckoutTransport,
  decodeCheckoutMessage,
} from './index';

/** An error the test's retry policy calls transient (as it does a database restarting). */
class Unavailable extends Error {}

/** What the app's handler saw of one delivery. */
interface Seen {
  messageId: string;
  attempt: number;
  routingKey: string;
  /** The handler's row, read through its context's transaction, and from outside it. */
  insideTransaction: number;
  outsideTransaction: number;
  /** The messages of its batch, when it shared a transaction with others. */
  batch: string[] | undefined;
}

/**
 * An app's own `@EventPattern` handler on the checkout transport, against a real Postgres and
 * RabbitMQ: its context carries the batch's open transaction, and what it throws reaches the
 * consumer as thrown (retried when transient, dead-lettered with its reason when poison).
 */
describe('the checkout transport and an app’s own message handler', () => {
  let schema: TestSchema;
  let broker: BrokerConnection;
  let transport: CheckoutTransport;
  let app: INestApplication;
  let closed = false;
  let exchange: string;
  let admin: Awaited<ReturnType<typeof adminChannel>>;
  let publisher: amqp.ChannelModel;
  let publishing: amqp.ConfirmChannel;
  const topology = () => topologyFor('order', { exchange });
  const seen: Seen[] = [];
  const settled: Array<Settlement<CheckoutMessage>> = [];
  /** What the handler does with a checkout (by transaction id): nothing more, refuse it, or fail for a while. */
  const behaviour = new Map<string, { refuse?: string; unavailableFor?: number }>();

  @Controller()
  class InquiryHandlers {
    @CheckoutEventPattern('inquiry')
    async onInquiry(@Payload() inquiry: MessageOfType<'inquiry'>, @Ctx() context: CheckoutContext): Promise<void> {
      const { refuse, unavailableFor = 0 } = behaviour.get(inquiry.transactionId) ?? {};
      if (refuse) throw new PoisonMessageError(refuse);
      const unit = context.getUnitOfWork();
      const delivery = context.getDelivery()!;
      const attempts = seen.filter((s) => s.messageId === inquiry.messageId).length;
      await unit.manager.query(`INSERT INTO handled (message_id) VALUES ($1)`, [inquiry.messageId]);
      const count = `SELECT count(*)::int AS n FROM handled WHERE message_id = $1`;
      const [inside] = await unit.manager.query<Array<{ n: number }>>(count, [inquiry.messageId]);
      const [outside] = await schema.dataSource.query<Array<{ n: number }>>(count, [inquiry.messageId]);
      seen.push({
        messageId: inquiry.messageId,
        attempt: delivery.attempt,
        routingKey: delivery.routingKey,
        insideTransaction: inside.n,
        outsideTransaction: outside.n,
        batch: unit.items.length > 1 ? unit.items.map((message) => message.messageId) : undefined,
      });
      if (attempts < unavailableFor) throw new Unavailable(`unavailable (${attempts + 1})`);
    }
  }

  @Module({ controllers: [InquiryHandlers] })
  class AppModule {}

  beforeAll(async () => {
    schema = await createTestSchema('transport');
    await schema.dataSource.query(`CREATE TABLE handled (message_id text NOT NULL)`);
    exchange = uniqueExchange('transport');
    broker = await BrokerConnection.connect({
      urls: [testEnv.amqpAdminUrl],
      connectionName: `${exchange} (test)`,
      logger: silentLogger,
    });
    admin = await adminChannel();
    await declareTopology(admin.channel, topology());
    transport = new CheckoutTransport(broker, {
      transactions: new Transactions(schema.dataSource),
      topology: topology(),
      prefetch: 10,
      batchSize: 10,
      retry: { maxAttempts: 1, delaysMs: [20], isTransient: (err) => err instanceof Unavailable },
      // The test's admin user stands for the participant the broker would have verified.
      decode: (content, delivery) =>
        decodeCheckoutMessage('order', content, {
          ...delivery,
          userId: delivery.userId === broker.username ? 'payment' : delivery.userId,
        }),
      logger: silentLogger,
      onSettled: (settlement) => settled.push(settlement),
    });
    const config = { PORT: '3000', DATABASE_URL: schema.url, AMQP_URL: 'amqp://unused', LOG_LEVEL: 'silent' };
    app = await createServiceApp(AppModule, { service: 'order', config: BaseConfig.parse(config) });
    connectCheckoutTransport(app, transport);
    await app.init();
    publisher = await amqp.connect(testEnv.amqpAdminUrl);
    publishing = await publisher.createConfirmChannel();
  });

  afterAll(async () => {
    if (!closed) await app?.close();
    await publisher?.close().catch(() => undefined);
    await admin?.close();
    await broker?.close();
    const { queue, deadLetterQueue } = topology();
    if (exchange) await deleteExchangeAndQueues(exchange, [queue, deadLetterQueue]);
    await schema?.drop();
  });

  /** Publishes checkout messages to the order service's queue, as the broker's admin user, confirmed. */
  async function publish(...messages: CheckoutMessage[]): Promise<void> {
    for (const message of messages) {
      publishing.publish(exchange, `order.${message.type}`, Buffer.from(JSON.stringify(message)), {
        persistent: true,
        messageId: message.messageId,
        type: message.type,
        userId: broker.username,
      });
    }
    await publishing.waitForConfirms();
  }
  const inquiry = (transactionId = randomUUID()) =>
    createMessage(Inquiry, {
      transactionId,
      sender: 'payment',
      recipient: 'order',
      payload: { preparedAt: new Date().toISOString() },
    });
  const settlementOf = (message: CheckoutMessage) =>
    settled.find((settlement) => settlement.message?.messageId === message.messageId);
  const deadLetters = async () =>
    (await drainQueue(admin.channel, topology().deadLetterQueue)).map((message) => ({
      messageId: message.properties.messageId as string,
      reason: message.properties.headers?.[HEADERS.deadLetterReason] as string,
    }));

  it('starts consuming with the app’s microservices, not before', async () => {
    expect(transport.isConsuming).toBe(false);
    // Waiting in the queue before the app consumes it: they come together, as a batch.
    const waiting = [inquiry(), inquiry(), inquiry()];
    await publish(...waiting);
    await app.startAllMicroservices();
    expect(transport.isConsuming).toBe(true);
    await eventually(() => waiting.every(settlementOf), { what: 'the waiting inquiries handled' });
    expect(waiting.map((message) => settlementOf(message)?.outcome)).toEqual(['handled', 'handled', 'handled']);
  });

  it('hands a message to the app’s handler with its batch’s open transaction and its delivery in the context', async () => {
    const messages = [inquiry(), inquiry()];
    await publish(...messages);
    await eventually(() => messages.every(settlementOf), { what: 'the inquiries handled' });
    for (const message of messages) {
      const [handled] = seen.filter((s) => s.messageId === message.messageId);
      // Its row is written in the transaction of the context: seen inside it, not yet outside.
      expect(handled).toMatchObject({
        attempt: 1,
        routingKey: 'order.inquiry',
        insideTransaction: 1,
        outsideTransaction: 0,
      });
      if (handled.batch) expect(handled.batch).toContain(message.messageId);
    }
    // Committed once the handler returned, before the delivery was acked.
    const rows = await schema.dataSource.query<Array<{ message_id: string }>>(
      `SELECT message_id FROM handled WHERE message_id = ANY($1)`,
      [messages.map((message) => message.messageId)],
    );
    expect(rows).toHaveLength(2);
  });

  it('dead-letters a message its handler refuses (PoisonMessageError), with the handler’s reason', async () => {
    const refused = inquiry();
    behaviour.set(refused.transactionId, { refuse: 'no such checkout here' });
    await publish(refused);
    await eventually(() => settlementOf(refused), { what: 'the refused inquiry settled' });
    expect(settlementOf(refused)).toMatchObject({ outcome: 'dead-lettered', deadLetterClass: 'handler-failed' });
    // Not Nest's "Internal server error": the error reached the consumer as thrown, at once (no retry).
    expect(await deadLetters()).toEqual([{ messageId: refused.messageId, reason: 'no such checkout here' }]);
  });

  it('retries a message whose handler failed transiently, without using up its attempts', async () => {
    const flaky = inquiry();
    // One attempt only (maxAttempts 1): a failure counted as an attempt would dead-letter it.
    behaviour.set(flaky.transactionId, { unavailableFor: 2 });
    await publish(flaky);
    await eventually(() => settled.find((s) => s.message?.messageId === flaky.messageId && s.outcome === 'handled'), {
      what: 'the flaky inquiry handled',
    });
    expect(settled.filter((s) => s.message?.messageId === flaky.messageId).map((s) => s.outcome)).toEqual([
      'retried',
      'retried',
      'handled',
    ]);
    expect(seen.filter((s) => s.messageId === flaky.messageId).map((s) => s.attempt)).toEqual([1, 1, 1]);
  });

  it('dead-letters a message no handler takes', async () => {
    const vote = createMessage(Vote, {
      transactionId: randomUUID(),
      sender: 'payment',
      recipient: 'order',
      payload: { vote: 'yes' },
    });
    await publish(vote);
    await eventually(() => settlementOf(vote), { what: 'the vote settled' });
    expect(await deadLetters()).toEqual([
      { messageId: vote.messageId, reason: "order has no handler for 'vote' messages" },
    ]);
  });

  it('stops consuming when the app closes', async () => {
    await app.close();
    closed = true;
    expect(transport.isConsuming).toBe(false);
  });
});

/**
 * A poison message in a batch costs the batch a few transactions, not one per message: it is set
 * aside and the rest run again together (real Postgres and RabbitMQ, through the transport).
 */
describe('the checkout transport and a poison message in a batch', () => {
  const BATCH = 10;
  let schema: TestSchema;
  let broker: BrokerConnection;
  let app: INestApplication;
  let exchange: string;
  let admin: Awaited<ReturnType<typeof adminChannel>>;
  const topology = () => topologyFor('order', { exchange });
  /** Per handler call: the message and the database transaction it ran in. */
  const calls: Array<{ messageId: string; transaction: string }> = [];
  const settled: Array<Settlement<CheckoutMessage>> = [];
  let poison = '';

  @Controller()
  class InquiryHandlers {
    @CheckoutEventPattern('inquiry')
    async onInquiry(@Payload() inquiry: MessageOfType<'inquiry'>, @Ctx() context: CheckoutContext): Promise<void> {
      const { manager } = context.getUnitOfWork();
      const [{ id }] = await manager.query<Array<{ id: string }>>(`SELECT txid_current()::text AS id`);
      calls.push({ messageId: inquiry.messageId, transaction: id });
      if (inquiry.transactionId === poison) throw new PoisonMessageError('poison');
      await manager.query(`INSERT INTO handled (message_id) VALUES ($1)`, [inquiry.messageId]);
    }
  }

  @Module({ controllers: [InquiryHandlers] })
  class AppModule {}

  beforeAll(async () => {
    schema = await createTestSchema('transport_poison');
    await schema.dataSource.query(`CREATE TABLE handled (message_id text NOT NULL)`);
    exchange = uniqueExchange('transport-poison');
    broker = await BrokerConnection.connect({
      urls: [testEnv.amqpAdminUrl],
      connectionName: exchange,
      logger: silentLogger,
    });
    admin = await adminChannel();
    await declareTopology(admin.channel, topology());
    const transport = new CheckoutTransport(broker, {
      transactions: new Transactions(schema.dataSource),
      topology: topology(),
      prefetch: BATCH,
      batchSize: BATCH,
      retry: { maxAttempts: 1, delaysMs: [20] },
      decode: (content, delivery) =>
        decodeCheckoutMessage('order', content, {
          ...delivery,
          userId: delivery.userId === broker.username ? 'payment' : delivery.userId,
        }),
      logger: silentLogger,
      onSettled: (settlement) => settled.push(settlement),
    });
    const config = { PORT: '3000', DATABASE_URL: schema.url, AMQP_URL: 'amqp://unused', LOG_LEVEL: 'silent' };
    app = await createServiceApp(AppModule, { service: 'order', config: BaseConfig.parse(config) });
    connectCheckoutTransport(app, transport);
    await app.init();
  });

  afterAll(async () => {
    await app?.close();
    await admin?.close();
    await broker?.close();
    const { queue, deadLetterQueue } = topology();
    if (exchange) await deleteExchangeAndQueues(exchange, [queue, deadLetterQueue]);
    await schema?.drop();
  });

  it('sets the poison aside and runs the rest together: 3 transactions for the batch, not one per message', async () => {
    // Waiting in the queue before the app consumes: they come as one batch, in transaction id order.
    const ids = Array.from({ length: BATCH }, () => randomUUID()).sort();
    poison = ids[2];
    const messages = ids.map((transactionId) =>
      createMessage(Inquiry, {
        transactionId,
        sender: 'payment',
        recipient: 'order',
        payload: { preparedAt: new Date().toISOString() },
      }),
    );
    const publisher = await amqp.connect(testEnv.amqpAdminUrl);
    const channel = await publisher.createConfirmChannel();
    for (const message of messages) {
      channel.publish(exchange, 'order.inquiry', Buffer.from(JSON.stringify(message)), {
        persistent: true,
        messageId: message.messageId,
        userId: broker.username,
      });
    }
    await channel.waitForConfirms();
    await publisher.close();
    await app.startAllMicroservices();
    await eventually(() => settled.length === BATCH, { what: 'the batch settled' });

    expect(settled.filter((s) => s.outcome === 'dead-lettered').map((s) => s.message?.transactionId)).toEqual([poison]);
    const [{ n }] = await schema.dataSource.query<Array<{ n: number }>>(`SELECT count(*)::int AS n FROM handled`);
    expect(n).toBe(BATCH - 1);
    // The poison's batch up to the poison, the rest of it together, the poison alone. (The
    // consumer may hand the first delivery over alone, so only the poison's batch is counted.)
    const poisonMessage = messages.find((message) => message.transactionId === poison)!;
    const ranIn = (messageId: string) =>
      new Set(calls.filter((call) => call.messageId === messageId).map((call) => call.transaction));
    const [first, ...later] = [...ranIn(poisonMessage.messageId)];
    const batchMates = calls.filter((call) => call.transaction === first && call.messageId !== poisonMessage.messageId);
    expect(later).toHaveLength(1);
    const mateIds = [...new Set(batchMates.map((call) => call.messageId))];
    expect(mateIds.length).toBeGreaterThan(0);
    const mateTransactions = new Set(
      mateIds.flatMap((id) => [...ranIn(id)]).filter((transaction) => transaction !== first),
    );
    expect(mateTransactions.size).toBe(1);
    expect(new Set([first, ...later, ...mateTransactions]).size).toBe(3);
  });
});

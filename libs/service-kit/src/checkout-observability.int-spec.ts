import { randomUUID } from 'node:crypto';
import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { InMemorySpanExporter, type TracerProvider } from '@opentelemetry/sdk-trace';
import { CheckoutMessage, createMessage, Prepare, Vote } from '@shop/contracts';
import {
  BrokerConnection,
  ConfirmPublisher,
  Consumer,
  currentLogContext,
  declareTopology,
  LogContext,
  oneAtATime,
  silentLogger,
  topologyFor,
} from '@shop/messaging';
import { OutboxRelay, Transactions } from '@shop/outbox';
import { decodeCheckoutMessage } from '@shop/checkout-transport';
import {
  Coordinator,
  COORDINATOR_MIGRATIONS,
  CreateParticipantTables1764000000200,
  Participant,
  ProtocolMetrics,
  send,
} from '@shop/two-phase-commit';
import { handleAlone } from '../../../test/support/batches';
import { eventually } from '../../../test/support/eventually';
import { testEnv } from '../../../test/support/env';
import { createTestSchema, TestSchema } from '../../../test/support/postgres';
import { deleteExchangeAndQueues, uniqueExchange } from '../../../test/support/rabbitmq';
import { ManagementDatabase } from './management-database';
import { ServiceMetrics } from './metrics';
import { startTracing } from './tracing';

/** The value of one sample (`name`, or a histogram's `name_count`), the first whose labels match. */
async function sample(metrics: ServiceMetrics, name: string, labels: Record<string, string> = {}) {
  const metric = name.replace(/_(count|sum)$/, '');
  const values = (await metrics.registry.getSingleMetric(metric)?.get())?.values ?? [];
  const found = (values as Array<(typeof values)[number] & { metricName?: string }>).find(
    (value) =>
      (value.metricName ?? metric) === name &&
      Object.entries(labels).every(([key, wanted]) => String(value.labels[key]) === wanted),
  );
  return found?.value;
}

const traceparentOf = (message: { traceContext: Record<string, string> }) => {
  const match = /^00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]$/.exec(message.traceContext.traceparent ?? '');
  return match ? { traceId: match[1], parentSpanId: match[2] } : undefined;
};

/**
 * Traces, log context and metrics of a checkout message as the services wire them (see
 * CheckoutMessaging), through a real outbox, relay, broker, consumer and participant.
 */
describe('observability of checkout messages', () => {
  let exporter: InMemorySpanExporter;
  let provider: TracerProvider;

  beforeAll(() => {
    // What instrument() registers, without patching modules; spans are kept in memory.
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    exporter = new InMemorySpanExporter();
    provider = startTracing('inventory', {}, exporter);
  });
  afterAll(async () => {
    await provider.shutdown();
    trace.disable();
    propagation.disable();
    context.disable();
  });

  describe('a participant consuming a prepare', () => {
    let schema: TestSchema;
    let broker: BrokerConnection;
    let publisher: ConfirmPublisher;
    let relay: OutboxRelay;
    let consumer: Consumer<CheckoutMessage>;
    let metrics: ServiceMetrics;
    let management: ManagementDatabase;
    let exchange: string;
    const handled: Array<{ log: LogContext | undefined; traceId?: string; spanId?: string }> = [];
    const inventory = () => topologyFor('inventory', { exchange });
    const order = () => topologyFor('order', { exchange });

    beforeAll(async () => {
      schema = await createTestSchema('observability', [CreateParticipantTables1764000000200]);
      exchange = uniqueExchange('observability');
      broker = await BrokerConnection.connect({
        urls: [testEnv.amqpAdminUrl],
        connectionName: `${exchange} (test)`,
        logger: silentLogger,
      });
      await broker.onConnect(async (connection) => {
        const channel = await connection.createChannel();
        await declareTopology(channel, inventory());
        await declareTopology(channel, order()); // the votes' destination; nobody consumes it here
        await channel.close();
      });
      // The backlog gauge is read on the management connection's timer (fast here).
      management = new ManagementDatabase(schema.url, 'observability', 50);
      metrics = new ServiceMetrics('inventory', management);
      management.start();
      publisher = new ConfirmPublisher(broker, exchange);
      await publisher.start();
      relay = new OutboxRelay({
        dataSource: schema.dataSource,
        publish: (messages) => publisher.publish(messages),
        logger: silentLogger,
        pollIntervalMs: 50,
        onSent: (lagSeconds) => metrics.sent(lagSeconds),
      });
      await relay.start();
      const transactions = new Transactions(schema.dataSource, {
        publishCommitted: (messages) => relay.publishCommitted(messages),
      });
      const participant = new Participant({
        name: 'inventory',
        transactions,
        resource: {
          prepare: async (_unit, prepares) => prepares.map(() => ({ vote: 'yes' as const })),
          commit: async () => {},
          abort: async () => {},
        },
        logger: silentLogger,
        observer: new ProtocolMetrics(metrics.registry),
      });
      consumer = new Consumer<CheckoutMessage>(broker, {
        topology: inventory(),
        prefetch: 5,
        batchSize: 5,
        retry: { maxAttempts: 1, delaysMs: [10] },
        // The test's admin user stands for the coordinator the broker would have verified.
        decode: (content, delivery) =>
          decodeCheckoutMessage('inventory', content, {
            ...delivery,
            userId: delivery.userId === broker.username ? 'order' : delivery.userId,
          }),
        handleBatch: oneAtATime(async (message) => {
          const span = trace.getActiveSpan()?.spanContext();
          handled.push({ log: { ...currentLogContext() }, traceId: span?.traceId, spanId: span?.spanId });
          if (message.type !== 'prepare') return;
          const [outcome] = await transactions.runBatch([message], (unit) => participant.handle(unit, unit.items));
          if (!outcome.ok) throw outcome.error;
        }),
        logger: silentLogger,
        onSettled: (settlement) => metrics.settled(settlement),
      });
      await consumer.start();
    });

    afterAll(async () => {
      await management.stop();
      await consumer.stop();
      await relay.stop();
      await publisher.stop();
      await broker.close();
      await deleteExchangeAndQueues(exchange, [...[inventory(), order()].flatMap((t) => [t.queue, t.deadLetterQueue])]);
      await schema.drop();
    });

    const outbox = async () =>
      schema.dataSource.query<Array<{ body: CheckoutMessage; headers: Record<string, string> }>>(
        `SELECT body, headers FROM outbox ORDER BY id`,
      );

    it('continues the sender’s trace in the handler, with the transaction id in the log context, and counts it', async () => {
      const transactionId = randomUUID();
      const prepare = createMessage(Prepare, {
        transactionId,
        sender: 'order',
        recipient: 'inventory',
        payload: {
          participant: 'inventory',
          deadline: new Date(Date.now() + 60_000).toISOString(),
          items: [{ sku: 'A', quantity: 1 }],
        },
      });
      // The sender: a request span (as POST /orders has) writing the prepare to its outbox.
      const origin = await trace.getTracer('test').startActiveSpan('POST /orders', async (span) => {
        await new Transactions(schema.dataSource).run(async (unit) => send(unit, [prepare]));
        span.end();
        return span.spanContext();
      });

      const [sent] = await outbox();
      expect(traceparentOf(sent.body)).toEqual({ traceId: origin.traceId, parentSpanId: origin.spanId });
      expect(sent.headers).toEqual(sent.body.traceContext); // also as AMQP headers

      const vote = await eventually(async () => (await outbox()).find((row) => row.body.type === 'vote'), {
        what: 'the vote',
      });
      expect(handled).toHaveLength(1);
      expect(handled[0]).toMatchObject({
        log: { transactionId, messageId: prepare.messageId, messageType: 'prepare' },
        traceId: origin.traceId,
      });
      await provider.forceFlush();
      const processSpan = exporter.getFinishedSpans().find((span) => span.name === 'process inventory.prepare');
      expect(processSpan?.spanContext().spanId).toBe(handled[0].spanId);
      expect(processSpan?.parentSpanContext?.spanId).toBe(origin.spanId);
      expect(processSpan?.attributes['checkout.transaction_id']).toBe(transactionId);
      // The vote is sent from inside the handler's span: the next hop is its child.
      expect(vote.body).toMatchObject({ type: 'vote', causationId: prepare.messageId });
      expect(traceparentOf(vote.body)).toEqual({ traceId: origin.traceId, parentSpanId: handled[0].spanId });

      expect(await sample(metrics, 'checkout_messages_consumed_total', { type: 'prepare', outcome: 'handled' })).toBe(
        1,
      );
      // The relay's lag, observed for the prepare and the vote.
      await eventually(async () => (await sample(metrics, 'checkout_outbox_relay_lag_seconds_count'))! >= 2, {
        what: 'relay lag observed twice',
      });
      await eventually(async () => (await sample(metrics, 'checkout_outbox_unsent_messages')) === 0, {
        what: 'an empty outbox backlog',
      });
      expect(await metrics.registry.metrics()).toMatch(/^checkout_messages_consumed_total\{.*service="inventory"/m);
    });

    it('counts a redelivered message dropped by the inbox, and dead-letters by reason class', async () => {
      const prepare = createMessage(Prepare, {
        transactionId: randomUUID(),
        sender: 'order',
        recipient: 'inventory',
        payload: {
          participant: 'inventory',
          deadline: new Date(Date.now() + 60_000).toISOString(),
          items: [{ sku: 'A', quantity: 1 }],
        },
      });
      const publish = (body: unknown, type = 'prepare', messageId: string = randomUUID()) =>
        publisher.publish([{ messageId, routingKey: 'inventory.prepare', type, body }]);
      await publish(prepare, 'prepare', prepare.messageId);
      await publish(prepare, 'prepare', prepare.messageId); // the same message again
      await publish('not an envelope', 'prepare');
      // A prepare may only come from the coordinator.
      await publish(
        createMessage(Prepare, {
          ...prepare,
          sender: 'payment',
          payload: prepare.payload,
          sentAt: new Date(prepare.sentAt),
        }),
      );

      await eventually(
        async () => (await sample(metrics, 'checkout_messages_consumed_total', { type: 'unknown' })) === 2,
        { what: 'both bad messages settled' },
      );
      await eventually(
        async () =>
          (await sample(metrics, 'checkout_messages_consumed_total', { type: 'prepare', outcome: 'handled' })) === 3,
        { what: 'the prepare and its duplicate handled' },
      );
      expect(await sample(metrics, 'checkout_inbox_duplicates_total', { type: 'prepare' })).toBe(1);
      expect(await sample(metrics, 'checkout_messages_dead_lettered_total', { reason: 'invalid' })).toBe(1);
      expect(await sample(metrics, 'checkout_messages_dead_lettered_total', { reason: 'forged' })).toBe(1);
      expect(
        await sample(metrics, 'checkout_messages_consumed_total', { type: 'unknown', outcome: 'dead-lettered' }),
      ).toBe(2);
    });
  });

  describe('the coordinator deciding', () => {
    let schema: TestSchema;
    let metrics: ServiceMetrics;
    let coordinator: Coordinator<'inventory' | 'payment'>;
    let transactions: Transactions;

    beforeAll(async () => {
      schema = await createTestSchema('observability_coordinator', COORDINATOR_MIGRATIONS);
      metrics = new ServiceMetrics('order', new ManagementDatabase(schema.url, 'observability'));
      transactions = new Transactions(schema.dataSource);
      coordinator = new Coordinator({
        participants: ['inventory', 'payment'], // the kit's own set, whatever services.json lists
        transactions,
        hooks: { onDecided: async () => {} },
        logger: silentLogger,
        observer: new ProtocolMetrics(metrics.registry),
      });
    });
    afterAll(() => schema.drop());

    const begin = async (timeoutMs: number) => {
      const id = randomUUID();
      await transactions.run((unit) =>
        coordinator.begin(unit, {
          id,
          timeoutMs,
          requests: {
            inventory: { items: [{ sku: 'A', quantity: 1 }] },
            payment: { customerId: 'c1', amount: 100, currency: 'EUR' },
          },
        }),
      );
      return id;
    };
    const vote = (transactionId: string, sender: 'inventory' | 'payment', yes = true) =>
      createMessage(Vote, {
        transactionId,
        sender,
        recipient: 'order',
        payload: yes ? { vote: 'yes' } : { vote: 'no', reason: 'OUT_OF_STOCK' },
      });

    it('counts decisions by outcome and reason, and times them', async () => {
      const committed = await begin(60_000);
      const refused = await begin(60_000);
      await begin(-1); // past its deadline

      const handle = (message: ReturnType<typeof vote>) => handleAlone(transactions, coordinator, message);
      await handle(vote(committed, 'inventory'));
      const last = vote(committed, 'payment');
      await handle(last);
      await handle(last); // a duplicate decides nothing
      await handle(vote(refused, 'inventory', false));
      expect(await coordinator.abortExpired()).toBe(1);

      expect(await sample(metrics, 'checkout_decisions_total', { outcome: 'commit', reason: 'none' })).toBe(1);
      expect(await sample(metrics, 'checkout_decisions_total', { outcome: 'abort', reason: 'OUT_OF_STOCK' })).toBe(1);
      expect(await sample(metrics, 'checkout_decisions_total', { outcome: 'abort', reason: 'TIMEOUT' })).toBe(1);
      expect(await sample(metrics, 'checkout_inbox_duplicates_total', { type: 'vote' })).toBe(1);
      expect(await sample(metrics, 'checkout_decision_seconds_count', { outcome: 'commit' })).toBe(1);
      expect(await sample(metrics, 'checkout_decision_seconds_count', { outcome: 'abort' })).toBe(2);
    });
  });
});

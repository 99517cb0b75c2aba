import { randomUUID } from 'node:crypto';
import { context, propagation, SpanKind, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { CheckoutMessage, createMessage, Prepare, routingKey } from '@shop/contracts';
import { Inbox } from '@shop/inbox';
import {
  BatchOutcome,
  BrokerConnection,
  ConfirmPublisher,
  Consumer,
  currentTraceContext,
  declareTopology,
  HEADERS,
  OutgoingMessage,
  PoisonMessageError,
  Settlement,
  silentLogger,
  topologyFor,
} from '@shop/messaging';
import { OutboxRelay, Transactions } from '@shop/outbox';
import { eventually } from '../../../test/support/eventually';
import { testEnv } from '../../../test/support/env';
import { createTestSchema, TestSchema } from '../../../test/support/postgres';
import { adminChannel, deleteExchangeAndQueues, drainQueue, uniqueExchange } from '../../../test/support/rabbitmq';
import { decodeCheckoutMessage } from './index';

/**
 * Packed messages (several protocol messages for one routing key in one broker message) on a
 * real RabbitMQ and Postgres: the relay packs what it publishes, the consumer handles each
 * packed message as its own (its inbox entry, its outcome, its dead letter), and every crash
 * between publish and ack processes nothing twice.
 */
describe('packed checkout messages', () => {
  let schema: TestSchema;
  let exchange: string;
  let publisherBroker: BrokerConnection;
  let publisher: ConfirmPublisher;
  let admin: Awaited<ReturnType<typeof adminChannel>>;
  const consumers: Array<{ consumer: Consumer<CheckoutMessage>; broker: BrokerConnection }> = [];
  const topology = () => topologyFor('inventory', { exchange });
  /** Every call of the handler for a message: its id and its delivery's attempt and redelivered flag. */
  let calls: Array<{ messageId: string; attempt: number; redelivered: boolean }> = [];
  let settled: Array<Settlement<CheckoutMessage>> = [];
  /** What the handler does with a message (by transaction id): refuse it, or fail it for its first attempts. */
  const behaviour = new Map<string, { refuse?: string; unavailableFor?: number }>();

  const spans = new InMemorySpanExporter();
  const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter: spans })] });

  beforeAll(async () => {
    // Spans kept in memory (what the service kit's tracing registers, without patching modules).
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    trace.setGlobalTracerProvider(provider);
    schema = await createTestSchema('packed');
    await schema.dataSource.query(`CREATE TABLE effects (message_id uuid NOT NULL)`);
    exchange = uniqueExchange('packed');
    admin = await adminChannel();
    await declareTopology(admin.channel, topology());
    publisherBroker = await BrokerConnection.connect({
      urls: [testEnv.amqpAdminUrl],
      connectionName: `${exchange} publisher (test)`,
      logger: silentLogger,
    });
    publisher = new ConfirmPublisher(publisherBroker, exchange);
    await publisher.start();
  });

  afterEach(async () => {
    for (const { consumer, broker } of consumers.splice(0)) {
      await consumer.stop();
      await broker.close();
    }
    await schema.dataSource.query(`TRUNCATE effects, inbox, outbox`);
    await admin.channel.purgeQueue(topology().queue);
    await drainQueue(admin.channel, topology().deadLetterQueue);
    calls = [];
    settled = [];
    behaviour.clear();
  });

  afterAll(async () => {
    await publisher?.stop();
    await publisherBroker?.close();
    const { queue, deadLetterQueue } = topology();
    await admin?.close();
    if (exchange) await deleteExchangeAndQueues(exchange, [queue, deadLetterQueue]);
    await schema?.drop();
    await provider.shutdown();
    trace.disable();
    propagation.disable();
    context.disable();
  });

  /**
   * A participant-like consumer: each batch in one unit of work (as the transport's), each
   * message recorded in the inbox, its effect written only the first time. `afterCommit` runs
   * once the batch committed and before its deliveries are acked (a crash there, say).
   */
  async function startConsumer(afterCommit?: (broker: BrokerConnection) => Promise<void>) {
    const broker = await BrokerConnection.connect({
      urls: [testEnv.amqpAdminUrl],
      connectionName: `${exchange} consumer ${consumers.length} (test)`,
      logger: silentLogger,
    });
    const transactions = new Transactions(schema.dataSource);
    const inbox = new Inbox(schema.dataSource, 'inventory.test');
    const consumer = new Consumer<CheckoutMessage>(broker, {
      topology: topology(),
      prefetch: 20,
      batchSize: 100,
      retry: { maxAttempts: 3, delaysMs: [20] },
      // The test's admin user stands for the coordinator the broker would have verified.
      decode: (body, delivery) =>
        decodeCheckoutMessage('inventory', body, {
          ...delivery,
          userId: delivery.userId === broker.username ? 'order' : delivery.userId,
        }),
      handleBatch: async (batch) => {
        const deliveryOf = new Map(batch.map((entry) => [entry.message, entry.delivery]));
        const results = await transactions.runBatch(
          batch.map((entry) => entry.message),
          async (unit) => {
            const firstTime = await inbox.record(
              unit,
              unit.items.map((message) => message.messageId),
            );
            for (const message of unit.items) {
              await unit.step(message, async () => {
                const { attempt, redelivered } = deliveryOf.get(message)!;
                calls.push({ messageId: message.messageId, attempt, redelivered });
                const { refuse, unavailableFor = 0 } = behaviour.get(message.transactionId) ?? {};
                if (refuse) throw new PoisonMessageError(refuse);
                if (attempt <= unavailableFor) throw new Error(`unavailable (attempt ${attempt})`);
                // A copy in the same batch is not a first time (the kit's handlers do the same).
                if (firstTime.delete(message.messageId))
                  await unit.manager.query(`INSERT INTO effects (message_id) VALUES ($1)`, [message.messageId]);
              });
            }
          },
        );
        await afterCommit?.(broker);
        return results.map((result): BatchOutcome => (result.ok ? { ok: true, value: undefined } : result));
      },
      logger: silentLogger,
      onSettled: (settlement) => settled.push(settlement),
    });
    await consumer.start();
    consumers.push({ consumer, broker });
    return consumer;
  }

  const prepare = (transactionId = randomUUID(), sender: 'order' | 'payment' = 'order') =>
    createMessage(Prepare, {
      transactionId,
      sender,
      recipient: 'inventory',
      payload: {
        participant: 'inventory',
        deadline: new Date(Date.now() + 60_000).toISOString(),
        items: [{ sku: 'A', quantity: 1 }],
      },
    });
  const outgoing = (message: CheckoutMessage | Record<string, unknown>): OutgoingMessage => ({
    messageId: String(message.messageId),
    routingKey: routingKey('inventory', 'prepare'),
    type: 'prepare',
    body: message,
    headers: (message.traceContext as Record<string, string> | undefined) ?? {},
  });
  /** Writes messages to the outbox in one committed transaction (no fast path: only a relay sends them). */
  const writeToOutbox = (messages: readonly CheckoutMessage[]) =>
    new Transactions(schema.dataSource).run(async (unit) => unit.send(messages.map(outgoing)));
  const relay = (options: { leaseMs?: number; onPublished?: () => void } = {}) =>
    new OutboxRelay({
      dataSource: schema.dataSource,
      publish: (messages) => publisher.publish(messages),
      logger: silentLogger,
      ...options,
    });
  const brokerMessagesQueued = async () => (await admin.channel.checkQueue(topology().queue)).messageCount;
  const effects = async () =>
    (await schema.dataSource.query<Array<{ message_id: string }>>(`SELECT message_id FROM effects`))
      .map((row) => row.message_id)
      .sort();
  const inboxEntries = async () =>
    Number(
      (
        await schema.dataSource.query<Array<{ n: string }>>(`SELECT count(*) AS n FROM inbox WHERE consumer = $1`, [
          'inventory.test',
        ])
      )[0].n,
    );
  const callsOf = (messageId: string) => calls.filter((call) => call.messageId === messageId);
  const idsOf = (messages: readonly { messageId: string }[]) => messages.map((message) => message.messageId).sort();
  const unsent = async () =>
    Number(
      (await schema.dataSource.query<Array<{ n: string }>>(`SELECT count(*) AS n FROM outbox WHERE sent_at IS NULL`))[0]
        .n,
    );

  it('sends one relay batch for one recipient as one broker message, handled per message with an inbox entry each', async () => {
    const prepares = [prepare(), prepare(), prepare(), prepare(), prepare()];
    await writeToOutbox(prepares);
    expect(await relay().drain()).toBe(5);
    expect(await unsent()).toBe(0); // each row marked sent with the pack that carried it
    expect(await brokerMessagesQueued()).toBe(1);

    await startConsumer();
    await eventually(async () => (await effects()).length === 5, { what: 'five effects' });
    await eventually(() => settled.length === 5, { what: 'five settlements' });
    expect(await effects()).toEqual(idsOf(prepares));
    expect(await inboxEntries()).toBe(5);
    expect(settled.map((settlement) => settlement.outcome)).toEqual(Array(5).fill('handled'));
    expect(calls.map((call) => call.attempt)).toEqual([1, 1, 1, 1, 1]);
  });

  it('dead-letters a bad packed message alone, with its reason, while the others of its pack commit', async () => {
    const good = [prepare(), prepare()];
    const refused = prepare();
    behaviour.set(refused.transactionId, { refuse: 'cannot reserve: poison' });
    const forged = prepare(randomUUID(), 'payment'); // a prepare only comes from the coordinator
    const invalid = { ...prepare(), payload: { participant: 'inventory', items: 'none' } };
    const pack = [good[0], refused, forged, invalid, good[1]].map((message) => outgoing(message));
    expect((await publisher.publish(pack)).confirmed).toHaveLength(5);
    expect(await brokerMessagesQueued()).toBe(1);

    await startConsumer();
    await eventually(() => settled.length === 5, { what: 'every packed message settled' });
    expect(await effects()).toEqual(idsOf(good));
    const dead = await drainQueue(admin.channel, topology().deadLetterQueue);
    const parked = dead.map((message) => ({
      messageId: message.properties.messageId as string,
      reason: message.properties.headers?.[HEADERS.deadLetterReason] as string,
      body: JSON.parse(message.content.toString()) as { messageId: string },
    }));
    expect(parked.map((one) => one.messageId).sort()).toEqual(idsOf([refused, forged, invalid]));
    const reasonOf = (id: string) => parked.find((one) => one.messageId === id)!.reason;
    expect(reasonOf(refused.messageId)).toBe('cannot reserve: poison');
    expect(reasonOf(forged.messageId)).toMatch(/^invalid message: a prepare may not come from payment/);
    expect(reasonOf(invalid.messageId)).toMatch(/^invalid message: .*payload/s);
    // Each parked alone: its own body, re-drivable as a message of its own.
    for (const one of parked) expect(one.body.messageId).toBe(one.messageId);
    expect(settled.filter((settlement) => settlement.outcome === 'dead-lettered')).toHaveLength(3);
  });

  it('retries a packed message that failed transiently alone, without handing the others of its pack over again', async () => {
    const prepares = [prepare(), prepare(), prepare()];
    behaviour.set(prepares[1].transactionId, { unavailableFor: 1 });
    expect((await publisher.publish(prepares.map(outgoing))).confirmed).toHaveLength(3);
    expect(await brokerMessagesQueued()).toBe(1);

    await startConsumer();
    await eventually(async () => (await effects()).length === 3, { what: 'all three effects' });
    // Its first attempt ran in the pack's batch, then alone once set aside; its second came alone from the retry queue.
    expect(callsOf(prepares[1].messageId).map((call) => call.attempt)).toEqual([1, 1, 2]);
    for (const other of [prepares[0], prepares[2]]) {
      const attempts = callsOf(other.messageId);
      expect(attempts.length).toBeGreaterThanOrEqual(1);
      expect(attempts.every((call) => call.attempt === 1 && !call.redelivered)).toBe(true);
    }
    await eventually(() => settled.filter((s) => s.outcome === 'handled').length === 3, { what: 'three handled' });
    expect(settled.filter((settlement) => settlement.outcome === 'retried')).toHaveLength(1);
    expect(await inboxEntries()).toBe(3);
  });

  it('redelivers a pack whose consumer crashed after its commit and before its ack, and processes nothing twice', async () => {
    const prepares = [prepare(), prepare(), prepare(), prepare()];
    expect((await publisher.publish(prepares.map(outgoing))).confirmed).toHaveLength(4);
    expect(await brokerMessagesQueued()).toBe(1);
    let crashed = false;
    // The first consumer commits the pack's batch, then loses its connection before acking.
    await startConsumer(async (broker) => {
      if (crashed) return;
      crashed = true;
      await broker.close();
    });
    await eventually(() => crashed, { what: 'the crash' });
    expect(await effects()).toEqual(idsOf(prepares));
    await startConsumer();
    await eventually(() => calls.filter((call) => call.redelivered).length === 4, { what: 'the pack redelivered' });
    await eventually(() => settled.length === 8, { what: 'the redelivery settled' });
    expect(await effects()).toEqual(idsOf(prepares)); // once each
    expect(await inboxEntries()).toBe(4);
  });

  it('re-publishes what a relay crashed on between the broker’s confirm and marking it sent, and the inbox drops the copies', async () => {
    const prepares = [prepare(), prepare(), prepare()];
    await writeToOutbox(prepares);
    const crashing = relay({
      leaseMs: 200,
      onPublished: () => {
        throw new Error('relay crashed before marking its rows sent');
      },
    });
    await expect(crashing.drain()).rejects.toThrow(/relay crashed/);
    expect(await unsent()).toBe(3);
    const next = relay();
    // Once the crashed relay's lease is over, the next one publishes the rows again (one pack).
    await eventually(async () => (await next.drain()) === 3, { what: 'the rows published again' });
    expect(await unsent()).toBe(0);
    expect(await brokerMessagesQueued()).toBe(2);

    await startConsumer();
    await eventually(() => calls.length >= 6 && settled.length === 6, { what: 'both packs handled' });
    for (const message of prepares) expect(callsOf(message.messageId)).toHaveLength(2);
    expect(await effects()).toEqual(idsOf(prepares)); // once each
    expect(await inboxEntries()).toBe(3);
  });

  it('takes a mixed stream of single and packed messages (a rolling upgrade), each once', async () => {
    const singles = new ConfirmPublisher(publisherBroker, exchange, { maxMessages: 1, maxBytes: 1 });
    await singles.start();
    try {
      const alone = [prepare(), prepare()];
      const packed = [prepare(), prepare(), prepare()];
      expect((await singles.publish(alone.map(outgoing))).confirmed).toHaveLength(2);
      expect((await publisher.publish(packed.map(outgoing))).confirmed).toHaveLength(3);
      expect((await singles.publish([outgoing(alone[0])])).confirmed).toHaveLength(1); // a duplicate, single
      expect((await publisher.publish([packed[0], packed[1]].map(outgoing))).confirmed).toHaveLength(2); // duplicates, packed
      expect(await brokerMessagesQueued()).toBe(2 + 1 + 1 + 1);

      await startConsumer();
      await eventually(() => settled.length === 8, { what: 'every message settled' });
      expect(settled.every((settlement) => settlement.outcome === 'handled')).toBe(true);
      expect(await effects()).toEqual(idsOf([...alone, ...packed]));
      expect(await inboxEntries()).toBe(5);
    } finally {
      await singles.stop();
    }
  });

  it('traces a batch with one span linked to the trace of each message it handled, and a publish with one span', async () => {
    // Three checkouts, each begun in a trace of its own (as three POST /orders are).
    const origins = ['POST /orders', 'POST /orders', 'POST /orders'].map((name) =>
      trace.getTracer('test').startActiveSpan(name, (span) => {
        const message = { ...prepare(), traceContext: currentTraceContext() };
        span.end();
        return { message, traceId: span.spanContext().traceId, spanId: span.spanContext().spanId };
      }),
    );
    spans.reset();
    expect((await publisher.publish(origins.map(({ message }) => outgoing(message)))).confirmed).toHaveLength(3);
    await startConsumer();
    await eventually(() => settled.length === 3, { what: 'three handled' });
    await eventually(() => spans.getFinishedSpans().find((span) => span.kind === SpanKind.CONSUMER), {
      what: 'the batch span',
    });
    const finished = spans.getFinishedSpans();
    const consumed = finished.filter((span) => span.kind === SpanKind.CONSUMER);
    expect(consumed.map((span) => span.name)).toEqual([`process ${topology().queue}`]); // one, not one per message
    const [batch] = consumed;
    expect(batch.attributes['messaging.batch.message_count']).toBe(3);
    expect(
      batch.links.map((link) => [
        link.context.traceId,
        link.context.spanId,
        link.attributes?.['checkout.transaction_id'],
      ]),
    ).toEqual(origins.map(({ message, traceId, spanId }) => [traceId, spanId, message.transactionId]));
    const published = finished.filter((span) => span.kind === SpanKind.PRODUCER);
    expect(published).toHaveLength(1);
    expect(published[0].links.map((link) => link.context.traceId)).toEqual(origins.map(({ traceId }) => traceId));
  });
});

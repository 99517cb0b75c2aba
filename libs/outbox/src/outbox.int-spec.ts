import { randomUUID } from 'node:crypto';
import {
  BrokerConnection,
  ConfirmPublisher,
  declareTopology,
  OutgoingMessage,
  silentLogger,
  topologyFor,
  unpack,
} from '@shop/messaging';
import { Inbox } from '@shop/inbox';
import { createTestSchema, TestSchema } from '../../../test/support/postgres';
import { adminChannel, deleteExchangeAndQueues, drainQueue, uniqueExchange } from '../../../test/support/rabbitmq';
import { eventually } from '../../../test/support/eventually';
import { testEnv } from '../../../test/support/env';
import { OutboxRelay, OutboxRelayOptions, Transactions } from './index';

function message(n: number): OutgoingMessage {
  return { messageId: randomUUID(), routingKey: 'svc.test', type: 'test', body: { n } };
}

describe('outbox relay on a real Postgres and RabbitMQ', () => {
  let schema: TestSchema;
  /** Transactions whose outbox rows only the relay publishes (no fast path). */
  let transactions: Transactions;
  let broker: BrokerConnection;
  let publisher: ConfirmPublisher;
  const relays: OutboxRelay[] = [];
  const exchange = uniqueExchange('outbox');
  const topology = topologyFor('svc', { exchange });

  beforeAll(async () => {
    broker = await BrokerConnection.connect({
      urls: [testEnv.amqpAdminUrl],
      connectionName: exchange,
      logger: silentLogger,
    });
    await broker.onConnect(async (connection) => {
      const channel = await connection.createChannel();
      await declareTopology(channel, topology);
      await channel.close();
    });
    publisher = new ConfirmPublisher(broker, exchange);
    await publisher.start();
  });

  beforeEach(async () => {
    schema = await createTestSchema('outbox');
    transactions = new Transactions(schema.dataSource);
  });

  afterEach(async () => {
    await Promise.all(relays.splice(0).map((relay) => relay.stop()));
    await schema.drop();
    const admin = await adminChannel();
    await admin.channel.purgeQueue(topology.queue);
    await admin.close();
  });

  afterAll(async () => {
    await publisher.stop();
    await broker.close();
    await deleteExchangeAndQueues(exchange, [topology.queue, topology.deadLetterQueue]);
  });

  function relay(options: Partial<OutboxRelayOptions> = {}): OutboxRelay {
    const created = new OutboxRelay({
      dataSource: schema.dataSource,
      publish: (messages) => publisher.publish(messages),
      logger: silentLogger,
      ...options,
    });
    relays.push(created);
    return created;
  }

  /** Transactions whose committed rows `relay` publishes at once (its fast path). */
  function publishingThrough(relay: OutboxRelay): Transactions {
    return new Transactions(schema.dataSource, { publishCommitted: (messages) => relay.publishCommitted(messages) });
  }

  async function queued(): Promise<Array<{ messageId: string; body: { n: number } }>> {
    const admin = await adminChannel();
    try {
      // Each message, as the consumer reads them: alone, or packed with others of its routing key.
      return (await drainQueue(admin.channel, topology.queue)).flatMap((m) =>
        unpack(m).map((one) => ({
          messageId: one.messageId as string,
          body: (one.body.ok ? one.body.value : undefined) as { n: number },
        })),
      );
    } finally {
      await admin.close();
    }
  }

  async function unsent(): Promise<number> {
    const [{ count }] = await schema.dataSource.query<Array<{ count: number }>>(
      `SELECT count(*)::int AS count FROM outbox WHERE sent_at IS NULL`,
    );
    return count;
  }

  it('publishes what a committed transaction wrote, and nothing of a rolled-back one', async () => {
    const committed = message(1);
    await transactions.run(async (unit) => unit.send([committed]));
    await expect(
      transactions.run(async (unit) => {
        unit.send([message(2)]);
        throw new Error('business rule failed');
      }),
    ).rejects.toThrow('business rule failed');

    expect(await relay().drain()).toBe(1);
    expect(await queued()).toEqual([{ messageId: committed.messageId, body: { n: 1 } }]);
    expect(await unsent()).toBe(0);
  });

  it('publishes right after the commit that wrote it (no poll), and nothing of a rolled-back savepoint', async () => {
    const fast = relay({ pollIntervalMs: 600_000 });
    await fast.start();
    const sent = message(7);
    await publishingThrough(fast).run(async (unit) => {
      unit.send([sent]);
      await unit
        .savepoint(async () => {
          unit.send([message(8)]);
          throw new Error('this message failed alone');
        })
        .catch(() => undefined);
      // A savepoint its caller chose not to keep (a refusal, not an error) forgets its messages too.
      await unit.savepoint(
        async () => unit.send([message(9)]),
        () => false,
      );
    });
    await fast.settle();
    expect((await queued()).map((m) => m.messageId)).toEqual([sent.messageId]);
    expect(await unsent()).toBe(0); // marked sent; the savepoints' rows were never committed
  });

  it('inserts the rows of a watched transaction together before its commit; a refused insert fails the commit', async () => {
    const fast = relay({ pollIntervalMs: 600_000 });
    const published = publishingThrough(fast);
    const rowsIn = async (manager: { query: typeof schema.dataSource.query }) =>
      (await manager.query<Array<{ count: number }>>(`SELECT count(*)::int AS count FROM outbox`))[0].count;
    await fast.start();
    const first = message(1);
    const seenInside = await published.run(async (unit) => {
      unit.send([first]);
      unit.send([message(2)]);
      return rowsIn(unit.manager);
    });
    expect(seenInside).toBe(0); // deferred to the commit
    expect(await rowsIn(schema.dataSource)).toBe(2);

    await expect(
      published.run(async (unit) => {
        await unit.manager.query(`CREATE TABLE effect (n int)`);
        unit.send([{ ...message(3), messageId: first.messageId }]);
      }),
    ).rejects.toThrow(/duplicate key/);
    expect(await rowsIn(schema.dataSource)).toBe(2);
    expect(await schema.dataSource.query(`SELECT to_regclass('effect') AS t`)).toEqual([{ t: null }]);
    await fast.settle();
    expect((await queued()).map((m) => m.body.n).sort()).toEqual([1, 2]);
  });

  it('backs off a row that keeps failing without holding up the rows behind it', async () => {
    const orphan: OutgoingMessage = { ...message(5), routingKey: 'nobody.test' };
    const fine = message(6);
    await transactions.run(async (unit) => unit.send([orphan]));
    await transactions.run(async (unit) => unit.send([fine]));
    const r = relay({ batchSize: 1 });
    await expect(r.drain()).rejects.toThrow(/nobody\.test/);
    // The failed row now waits for its next attempt; the next drain sends the one behind it.
    expect(await r.drain()).toBe(1);
    expect((await queued()).map((m) => m.messageId)).toEqual([fine.messageId]);
    const [row] = await schema.dataSource.query<Array<{ attempts: number; later: boolean }>>(
      `SELECT attempts, next_attempt_at > now() AS later FROM outbox WHERE message_id = $1`,
      [orphan.messageId],
    );
    expect(row).toEqual({ attempts: 1, later: true });
  });

  it('never puts a refused row off past 5 s, however often it failed: well inside the 15 s prepare deadline', async () => {
    const orphan: OutgoingMessage = { ...message(5), routingKey: 'nobody.test' };
    await transactions.run(async (unit) => unit.send([orphan]));
    // As if it had been refused 30 times already (a route missing for a while), and due now.
    await schema.dataSource.query(`UPDATE outbox SET attempts = 30, next_attempt_at = now()`);
    await expect(relay().drain()).rejects.toThrow(/nobody\.test/);
    const [row] = await schema.dataSource.query<Array<{ attempts: number; waitSeconds: number }>>(
      `SELECT attempts, extract(epoch FROM next_attempt_at - clock_timestamp())::float8 AS "waitSeconds" FROM outbox`,
    );
    expect(row.attempts).toBe(31);
    expect(row.waitSeconds).toBeGreaterThan(0);
    expect(row.waitSeconds).toBeLessThanOrEqual(5);
  });

  it('delivers a message even if the relay crashes between publish and mark, and the handler runs once', async () => {
    const sent = message(42);
    await transactions.run(async (unit) => unit.send([sent]));
    const crashing = relay({
      leaseMs: 200,
      onPublished: () => {
        throw new Error('relay crashed after the broker confirmed');
      },
    });
    await expect(crashing.drain()).rejects.toThrow('relay crashed');
    expect(await unsent()).toBe(1);

    // Its lease keeps other relays off the row for a while; then another relay publishes it.
    expect(await relay().drain()).toBe(0);
    await eventually(async () => (await relay().drain()) === 1, { what: 'the row published once its lease ran out' });
    expect(await unsent()).toBe(0);

    // Both copies reached the queue; the inbox lets the handler's effect happen once.
    const copies = await queued();
    expect(copies.map((m) => m.messageId)).toEqual([sent.messageId, sent.messageId]);
    await schema.dataSource.query(`CREATE TABLE effects (n int NOT NULL)`);
    const inbox = new Inbox(schema.dataSource, 'test-consumer');
    const outcomes = [];
    for (const copy of copies) {
      outcomes.push(
        await new Transactions(schema.dataSource).run(async (unit) => {
          if (!(await inbox.record(unit, [copy.messageId])).has(copy.messageId)) return { duplicate: true };
          await unit.manager.query(`INSERT INTO effects VALUES ($1)`, [copy.body.n]);
          return { duplicate: false };
        }),
      );
    }
    expect(outcomes.map((o) => o.duplicate)).toEqual([false, true]);
    expect(await schema.dataSource.query(`SELECT n FROM effects`)).toEqual([{ n: 42 }]);
  });

  it('lets several relays drain one outbox without publishing a row twice', async () => {
    const messages = Array.from({ length: 600 }, (_, i) => message(i));
    for (let i = 0; i < messages.length; i += 100) {
      await transactions.run(async (unit) => unit.send(messages.slice(i, i + 100)));
    }
    const counts = await Promise.all(
      [relay({ batchSize: 50 }), relay({ batchSize: 50 }), relay({ batchSize: 50 })].map((r) => r.drain()),
    );
    expect(counts.reduce((a, b) => a + b, 0)).toBe(600);
    const received = await queued();
    expect(received).toHaveLength(600);
    expect(new Set(received.map((m) => m.messageId)).size).toBe(600);
  });

  it('keeps a row whose publish failed and sends it once the route exists', async () => {
    const orphan: OutgoingMessage = { ...message(5), routingKey: 'nobody.test' };
    await transactions.run(async (unit) => unit.send([orphan]));
    await expect(relay().drain()).rejects.toThrow(
      /^1 of 1 outbox messages not published \(1× nobody\.test: no queue bound for routing key nobody\.test\)$/,
    );
    expect(await unsent()).toBe(1);
  });

  it('prunes sent rows past retention and keeps unsent ones', async () => {
    await transactions.run(async (unit) => unit.send([message(1), message(2)]));
    const r = relay({ retentionMs: 0 });
    await r.drain();
    await transactions.run(async (unit) => unit.send([message(3)]));
    await r.prune();
    const rows = await schema.dataSource.query<Array<{ n: number; sent: boolean }>>(
      `SELECT (body->>'n')::int AS n, sent_at IS NOT NULL AS sent FROM outbox`,
    );
    expect(rows).toEqual([{ n: 3, sent: false }]);
  });
});

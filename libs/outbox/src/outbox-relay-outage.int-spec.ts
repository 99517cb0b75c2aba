import { randomUUID } from 'node:crypto';
import net from 'node:net';
import {
  BrokerConnection,
  ConfirmPublisher,
  declareTopology,
  OutgoingMessage,
  silentLogger,
  topologyFor,
  unpack,
} from '@shop/messaging';
import { createTestSchema } from '../../../test/support/postgres';
import { adminChannel, deleteExchangeAndQueues, drainQueue, uniqueExchange } from '../../../test/support/rabbitmq';
import { eventually } from '../../../test/support/eventually';
import { testEnv } from '../../../test/support/env';
import { FAST_PATH_GRACE_SECONDS, OutboxRelay, Transactions } from './index';

/**
 * The road between this test's broker connection and the real RabbitMQ, which the test can close
 * and open again: closed, the broker looks stopped to the client (its connection dies, a new one
 * is refused); open, it is back. Only this test's connection goes through it, so the suites
 * running beside it keep their broker.
 */
class BrokerRoad {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private port = 0;

  private constructor(private readonly target: URL) {}

  static async open(brokerUrl: string): Promise<BrokerRoad> {
    const road = new BrokerRoad(new URL(brokerUrl));
    await road.reopen();
    return road;
  }

  /** `brokerUrl` (credentials, vhost) by way of this road. */
  url(): string {
    const through = new URL(this.target);
    through.hostname = '127.0.0.1';
    through.port = String(this.port);
    return through.toString();
  }

  /** The broker goes away: every connection through the road is cut, new ones are refused. */
  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = new Promise((resolve) => server.close(resolve));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }

  /** The broker is back, on the same address. */
  async reopen(): Promise<void> {
    const server = net.createServer((client) => this.carry(client));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as net.AddressInfo).port;
    this.server = server;
  }

  private carry(client: net.Socket): void {
    const broker = net.connect(Number(this.target.port || 5672), this.target.hostname);
    for (const socket of [client, broker]) {
      this.sockets.add(socket);
      socket.on('error', () => undefined); // 'close' follows
      socket.on('close', () => {
        this.sockets.delete(socket);
        client.destroy();
        broker.destroy();
      });
    }
    client.pipe(broker).pipe(client);
  }
}

/** The relay's poll: its safety net looks for due rows this often. */
const POLL_MS = 1_000;
/** What one round of claim, publish and mark may take on a busy test machine. */
const MARGIN_MS = 500;
/** Rows written during the outage stay unsent this long past their grace (a polling relay would have claimed them). */
const DUE_FOR_MS = 2 * POLL_MS;

function message(n: number): OutgoingMessage {
  return { messageId: randomUUID(), routingKey: 'svc.test', type: 'test', body: { n } };
}

describe('outbox relay through a broker outage', () => {
  const exchange = uniqueExchange('outbox-outage');
  const topology = topologyFor('svc', { exchange });
  /** What a test started, stopped after it in reverse order. */
  const cleanups: Array<() => Promise<unknown>> = [];

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    const admin = await adminChannel();
    await admin.channel.purgeQueue(topology.queue);
    await admin.close();
  });

  afterAll(async () => {
    await deleteExchangeAndQueues(exchange, [topology.queue, topology.deadLetterQueue]);
  });

  it.each([
    { how: 'claims nothing while the broker is known down', knowsWhenDown: true, pollIntervalMs: POLL_MS },
    {
      how: 'gives the lease of a batch the broker could not take back at once',
      knowsWhenDown: false,
      pollIntervalMs: POLL_MS,
    },
    { how: 'is woken by the reconnect, with no poll due for minutes', knowsWhenDown: true, pollIntervalMs: 600_000 },
  ])(
    'publishes what was written during the outage within one poll of the broker’s return: $how',
    async ({ knowsWhenDown, pollIntervalMs }) => {
      const schema = await createTestSchema('outbox_outage');
      cleanups.push(() => schema.drop());
      const unsent = (): Promise<Array<{ attempts: number; due: boolean }>> =>
        schema.dataSource.query(`SELECT attempts, next_attempt_at <= now() AS due FROM outbox WHERE sent_at IS NULL`);
      const road = await BrokerRoad.open(testEnv.amqpAdminUrl);
      cleanups.push(() => road.close());
      // Reconnects quickly once the broker is back: the relay's delay is measured from the reconnect.
      const broker = await BrokerConnection.connect({
        urls: [road.url()],
        connectionName: exchange,
        logger: silentLogger,
        maxDelayMs: 200,
      });
      cleanups.push(() => broker.close());
      await broker.onConnect(async (connection) => {
        const channel = await connection.createChannel();
        await declareTopology(channel, topology);
        await channel.close();
      });
      const publisher = new ConfirmPublisher(broker, exchange);
      await publisher.start();
      cleanups.push(() => publisher.stop());
      const publishedAt = new Map<string, number>();
      const relay = new OutboxRelay({
        dataSource: schema.dataSource,
        publish: (messages) => publisher.publish(messages),
        brokerAvailable: knowsWhenDown ? () => publisher.isAvailable : undefined,
        logger: silentLogger,
        pollIntervalMs,
        onPublished: (ids) => ids.forEach((id) => publishedAt.set(id, Date.now())),
      });
      const transactions = new Transactions(schema.dataSource, {
        publishCommitted: (messages) => relay.publishCommitted(messages),
      });
      await relay.start();
      cleanups.push(() => relay.stop());
      let reconnectedAt = 0;
      // As the services wire it: the relay is woken when the connection comes back.
      await broker.onConnect(async () => {
        reconnectedAt = Date.now();
        relay.wake();
      });

      const before = message(0);
      await transactions.run(async (unit) => unit.send([before]));
      await eventually(async () => (await unsent()).length === 0, { what: 'the row written before the outage sent' });

      await road.close();
      await eventually(() => !publisher.isAvailable, { what: 'the outage noticed' });
      // Ten checkouts during the outage, one transaction each; their fast path fails.
      const during = Array.from({ length: 10 }, (_, i) => message(1 + i));
      for (const sent of during) await transactions.run(async (unit) => unit.send([sent]));
      // The outage goes on until they are past the fast path's grace by two polls...
      await eventually(
        async () => {
          const [{ past }] = await schema.dataSource.query<Array<{ past: boolean }>>(
            `SELECT bool_and(created_at + make_interval(secs => $1) < now()) AS past FROM outbox WHERE sent_at IS NULL`,
            [FAST_PATH_GRACE_SECONDS + DUE_FOR_MS / 1000],
          );
          return past;
        },
        { what: 'the outage rows past their grace', timeoutMs: 30_000 },
      );
      // ... and one more comes just before the broker is back, still in its grace period.
      const late = message(11);
      during.push(late);
      await transactions.run(async (unit) => unit.send([late]));
      await relay.settle();
      // Nothing waits on a lease or a grace period for the broker's return, and the outage counted
      // as no row's attempt (a relay that knows when the broker is down claimed none of them).
      await eventually(
        async () => {
          const rows = await unsent();
          return rows.length === during.length && rows.every((row) => row.attempts === 0 && row.due);
        },
        { what: 'the outage rows due, with no attempt counted', timeoutMs: 2 * POLL_MS },
      ).catch(async (err: Error) => {
        throw new Error(`${err.message}; unsent rows: ${JSON.stringify(await unsent())}`);
      });

      const reopenedAt = Date.now();
      await road.reopen();
      // Well past the old 30 s lease if it is ever claimed during the outage, so the delay shows.
      await eventually(async () => (await unsent()).length === 0, {
        what: 'every row written during the outage sent',
        timeoutMs: 45_000,
        intervalMs: 100,
      });
      expect(reconnectedAt).toBeGreaterThanOrEqual(reopenedAt);
      const delays = during.map((sent) => (publishedAt.get(sent.messageId) ?? Infinity) - reconnectedAt);
      expect(Math.max(...delays)).toBeLessThan(POLL_MS + MARGIN_MS);

      // Nothing lost, nothing twice: each one reached the queue once.
      const admin = await adminChannel();
      const received = (await drainQueue(admin.channel, topology.queue)).flatMap((m) =>
        unpack(m).map((one) => String(one.messageId)),
      );
      await admin.close();
      expect(received.sort()).toEqual([before, ...during].map((sent) => sent.messageId).sort());
      // Each was claimed once, by the publish that sent it.
      const attempts = await schema.dataSource.query<Array<{ attempts: number }>>(
        `SELECT attempts FROM outbox WHERE message_id = ANY($1::uuid[])`,
        [during.map((sent) => sent.messageId)],
      );
      expect(attempts.map((row) => row.attempts)).toEqual(during.map(() => 1));
    },
    90_000,
  );
});

import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { Registry } from 'prom-client';
import { Transactions } from '@shop/outbox';
import { RetryLaterException, type ServiceMetrics } from '@shop/service-kit';
import { requireEnv } from '../../../../test/support/env';
import { eventually } from '../../../../test/support/eventually';
import { createTestSchema, type TestSchema } from '../../../../test/support/postgres';
import { OrderConfig } from '../config';
import { orderMigrations } from '../migrations';
import { AdmissionControl } from './admission-control';
import { DecisionListener } from './decision-listener';
import { DecisionWaits } from './decision-waits';
import { ORDER_DECIDED_CHANNEL, OrderDecisions } from './order-decisions';

/**
 * NOTIFY takes no privilege: on the shared server, payment's role can announce on the order
 * service's channel. What it announces is a hint only: an order is heard decided (its admission
 * slot freed, its waiters woken) once the database says so.
 */
describe('decision announcements from another role (forged NOTIFY)', () => {
  let schema: TestSchema;
  let listener: DecisionListener;
  let admission: AdmissionControl;
  let waits: DecisionWaits;
  /** The ids this process heard decided, in order. */
  const heard: string[] = [];

  beforeAll(async () => {
    schema = await createTestSchema('orderhint', orderMigrations);
    const config = OrderConfig.parse({
      NODE_ENV: 'test',
      PORT: '3000',
      DATABASE_URL: schema.url,
      AMQP_URL: 'amqp://unused',
      ADMISSION_MIN_IN_FLIGHT: '1',
      ADMISSION_MAX_IN_FLIGHT: '1',
      ADMISSION_WAIT_MS: '0',
    });
    listener = new DecisionListener(schema.dataSource, config);
    const metrics = { gaugeOnScrape: () => undefined, registry: new Registry() } as unknown as ServiceMetrics;
    admission = new AdmissionControl(config, schema.dataSource, listener, metrics);
    waits = new DecisionWaits(config, listener);
    listener.subscribe({ decided: (id) => heard.push(id), resync: () => undefined });
    admission.onApplicationBootstrap();
    waits.onApplicationBootstrap();
    await listener.onApplicationBootstrap();
  });
  afterAll(async () => {
    waits?.onModuleDestroy();
    await admission?.onModuleDestroy();
    await listener?.onModuleDestroy();
    await schema?.drop();
  });

  async function pendingOrder(): Promise<string> {
    const id = randomUUID();
    await schema.dataSource.query(
      `INSERT INTO orders (id, customer_id, status, total, currency, request_hash)
       VALUES ($1, 'hinted-customer', 'PENDING', 100, 'EUR', 'h')`,
      [id],
    );
    return id;
  }

  /** Decides the order as the coordinator does: its status and the announcement, in one commit. */
  const decide = (orderId: string) =>
    new Transactions(schema.dataSource).run((unit) =>
      new OrderDecisions().onDecided(unit, [{ transactionId: orderId, outcome: 'commit', reason: null }]),
    );

  /** Announces on the order service's channel as payment's runtime role (its own connection). */
  async function forge(payloads: string[]): Promise<void> {
    const payment = new Client({ connectionString: requireEnv('PAYMENT_DATABASE_URL') });
    await payment.connect();
    try {
      for (const payload of payloads)
        await payment.query('SELECT pg_notify($1, $2)', [`${schema.name}.${ORDER_DECIDED_CHANNEL}`, payload]);
    } finally {
      await payment.end();
    }
  }

  it('frees no admission slot and wakes no waiter for an order still PENDING; the real decision does', async () => {
    const held = await pendingOrder();
    (await admission.admit()).accepted(held);
    expect(admission.inFlight).toBe(1);
    let woken: boolean | undefined;
    void waits.next(held, 30_000).then((announced) => (woken = announced));

    await forge([held, held.toUpperCase(), randomUUID(), 'not-an-order-id', "'); DROP TABLE orders; --"]);
    // A genuine decision after the forged ones: once it is heard, they have all been weighed.
    const sentinel = await pendingOrder();
    await decide(sentinel);
    await eventually(() => heard.includes(sentinel), { timeoutMs: 5_000, what: 'the sentinel decision' });

    expect(heard).toEqual([sentinel]);
    expect(admission.inFlight).toBe(1); // the held order's slot is still taken
    expect(woken).toBeUndefined();
    await expect(admission.admit()).rejects.toBeInstanceOf(RetryLaterException);

    await decide(held);
    await eventually(() => woken !== undefined, { timeoutMs: 5_000, what: 'the waiter woken' });
    expect({ woken, inFlight: admission.inFlight, heard }).toEqual({
      woken: true,
      inFlight: 0,
      heard: [sentinel, held],
    });
  });

  it('still hears an order decided by the coordinator when someone else announces it too', async () => {
    const orderId = await pendingOrder();
    await decide(orderId);
    await forge([orderId]); // a true hint is still true
    await eventually(() => heard.filter((id) => id === orderId).length === 2, { timeoutMs: 5_000, what: 'both' });
  });
});

import { UnprocessableEntityException } from '@nestjs/common';
import { silentLogger } from '@shop/messaging';
import { Transactions } from '@shop/outbox';
import { RequestDatabase, type Retention } from '@shop/service-kit';
import { Coordinator } from '@shop/two-phase-commit';
import { createTestSchema, type TestSchema } from '../../../../test/support/postgres';
import { OrderConfig } from '../config';
import { orderMigrations } from '../migrations';
import type { AdmissionTicket } from './admission-control';
import type { DecisionWaits } from './decision-waits';
import { OrderDecisions } from './order-decisions';
import type { OrderRequest } from './order.schemas';
import { OrdersService } from './orders.service';

/**
 * Orders placed at the same time share one transaction and are written set-based: a statement
 * for all their prices, one for all their orders and lines, one for all their checkouts. Each
 * still gets its own answer: a new order, a replay of its key, or a refusal that wrote nothing.
 */
describe('placing orders at once', () => {
  let schema: TestSchema;
  let orders: OrdersService;
  const statements: string[] = [];
  const accepted: string[] = [];
  const ticket: AdmissionTicket = { accepted: (id) => accepted.push(id), cancel: () => undefined };

  beforeAll(async () => {
    schema = await createTestSchema('orderplacement', orderMigrations);
    await schema.dataSource.query(
      `INSERT INTO products (sku, name, unit_price) VALUES ('SKU-1', 'one', 100), ('SKU-2', 'two', 250)`,
    );
    const config = OrderConfig.parse({ PORT: '3000', DATABASE_URL: schema.url, AMQP_URL: 'amqp://unused' });
    const transactions = new Transactions(schema.dataSource);
    const coordinator = new Coordinator({
      participants: ['inventory', 'payment'],
      transactions,
      hooks: new OrderDecisions(),
      logger: silentLogger,
    });
    // Every statement the requests' transactions send (the connections are real).
    const createQueryRunner = schema.dataSource.createQueryRunner.bind(schema.dataSource);
    jest.spyOn(schema.dataSource, 'createQueryRunner').mockImplementation((mode) => {
      const runner = createQueryRunner(mode);
      const query = runner.query.bind(runner);
      runner.query = ((sql: string, ...rest: unknown[]) => (
        statements.push(sql),
        query(sql, ...(rest as []))
      )) as typeof runner.query;
      return runner;
    });
    const database = new RequestDatabase(schema.dataSource, transactions, config);
    const retention = { register: () => undefined } as unknown as Retention;
    orders = new OrdersService(database, coordinator, {} as DecisionWaits, config, schema.dataSource, retention);
  });
  afterAll(async () => {
    jest.restoreAllMocks();
    await schema?.drop();
  });

  const order = (customerId: string, sku = 'SKU-1', quantity = 1): OrderRequest => ({
    customerId,
    items: [{ sku, quantity }],
  });
  const count = (pattern: RegExp) => statements.filter((sql) => pattern.test(sql)).length;

  it('writes 40 of them in a few statements, and answers each alone', async () => {
    await orders.place(order('kept', 'SKU-2', 2), 'used-key', ticket);
    statements.length = 0;
    accepted.length = 0;

    const fresh = Array.from({ length: 36 }, (_, n) =>
      orders.place(order(`buyer-${n}`, 'SKU-2', 3), `key-${n}`, ticket),
    );
    const unknownSku = orders.place(order('lost', 'NO-SUCH-SKU'), 'key-unknown', ticket).catch((err: unknown) => err);
    const twins = [1, 2].map(() => orders.place(order('twin'), 'twin-key', ticket));
    const reused = orders.place(order('kept', 'SKU-1', 1), 'used-key', ticket).catch((err: unknown) => err);

    const placed = await Promise.all(fresh);
    expect(placed.map((p) => [p.replayed, p.order.status, p.order.total])).toEqual(
      placed.map(() => [false, 'PENDING', 750]),
    );
    expect(new Set(placed.map((p) => p.order.id)).size).toBe(36);
    const [first, second] = await Promise.all(twins);
    expect(second.order.id).toBe(first.order.id);
    expect([first.replayed, second.replayed]).toEqual([false, true]);
    expect(await unknownSku).toBeInstanceOf(UnprocessableEntityException);
    expect(await reused).toBeInstanceOf(UnprocessableEntityException);

    // Set-based: the first two requests each opened a group of their own, the rest shared one.
    expect(count(/INSERT INTO orders/)).toBeLessThanOrEqual(3);
    expect(count(/SELECT sku, unit_price FROM products/)).toBeLessThanOrEqual(3);
    expect(count(/INSERT INTO tpc_transactions/)).toBeLessThanOrEqual(3);

    // What was written: each new order with its lines, its checkout and a prepare per participant.
    const ids = [...placed.map((p) => p.order.id), first.order.id];
    const rows = await schema.dataSource.query<Array<{ id: string; lines: number; asked: number; prepares: number }>>(
      `SELECT o.id,
              (SELECT count(*) FROM order_items i WHERE i.order_id = o.id)::int AS lines,
              (SELECT count(*) FROM tpc_participants p WHERE p.transaction_id = o.id)::int AS asked,
              (SELECT count(*) FROM outbox m WHERE m.body->>'transactionId' = o.id::text AND m.message_type = 'prepare')::int AS prepares
         FROM orders o WHERE o.id = ANY($1::uuid[])`,
      [ids],
    );
    expect(rows).toHaveLength(37);
    for (const row of rows) expect(row).toMatchObject({ lines: 1, asked: 2, prepares: 2 });
    // The refusals wrote nothing; the earlier order of the reused key is as it was.
    expect(await schema.dataSource.query(`SELECT id FROM orders WHERE customer_id = 'lost'`)).toEqual([]);
    const [kept] = await schema.dataSource.query<Array<{ total: string }>>(
      `SELECT total::text FROM orders WHERE customer_id = 'kept' AND idempotency_key = 'used-key'`,
    );
    expect(kept.total).toBe('500');
    // A slot is taken by each new order once committed, and by nothing else.
    expect(accepted.sort()).toEqual(ids.sort());
  });
});

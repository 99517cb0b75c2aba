import { randomUUID } from 'node:crypto';
import { Transactions } from '@shop/outbox';
import { RequestDatabase, type Retention } from '@shop/service-kit';
import type { Coordinator } from '@shop/two-phase-commit';
import { eventually } from '../../../../test/support/eventually';
import { createTestSchema, type TestSchema } from '../../../../test/support/postgres';
import { OrderConfig } from '../config';
import { orderMigrations } from '../migrations';
import { DecisionListener } from './decision-listener';
import { DecisionWaits } from './decision-waits';
import { OrderDecisions } from './order-decisions';
import { OrdersService } from './orders.service';

/**
 * `Prefer: wait` against the real database and its real announcements (NOTIFY on the decision's
 * commit, one LISTEN connection): a decision announced at any moment of the wait wakes it.
 */
describe('waiting for an order to be decided (Prefer: wait)', () => {
  let schema: TestSchema;
  let listener: DecisionListener;
  let waits: DecisionWaits;
  let database: RequestDatabase;
  let orders: OrdersService;
  const customer = 'waiting-customer';

  beforeAll(async () => {
    schema = await createTestSchema('orderwait', orderMigrations);
    // One waiter at a time: a wake-up left registered would be seen (no room).
    const config = OrderConfig.parse({
      PORT: '3000',
      DATABASE_URL: schema.url,
      AMQP_URL: 'amqp://unused',
      PREFER_WAIT_MAX_WAITERS: '1',
    });
    listener = new DecisionListener(schema.dataSource, config);
    waits = new DecisionWaits(config, listener);
    waits.onApplicationBootstrap();
    await listener.onApplicationBootstrap();
    database = new RequestDatabase(schema.dataSource, new Transactions(schema.dataSource), config);
    const retention = { register: () => undefined } as unknown as Retention;
    // Placing orders is not what is tested here: no coordinator is needed.
    orders = new OrdersService(database, {} as Coordinator, waits, config, schema.dataSource, retention);
  });
  afterAll(async () => {
    waits?.onModuleDestroy();
    await listener?.onModuleDestroy();
    await schema?.drop();
  });
  afterEach(() => jest.restoreAllMocks());

  async function pendingOrder(): Promise<string> {
    const id = randomUUID();
    await schema.dataSource.query(
      `WITH placed AS (
         INSERT INTO orders (id, customer_id, status, total, currency, request_hash)
         VALUES ($1, $2, 'PENDING', 100, 'EUR', 'h') RETURNING id)
       INSERT INTO order_items (order_id, sku, quantity, unit_price) SELECT id, 'sku-1', 1, 100 FROM placed`,
      [id, customer],
    );
    return id;
  }

  /** Decides the order as the coordinator does (its status and the announcement, in one commit); resolves once this process heard it. */
  async function decide(orderId: string): Promise<void> {
    let heard!: () => void;
    const announced = new Promise<void>((resolve) => (heard = resolve));
    const unsubscribe = listener.subscribe({ decided: (id) => id === orderId && heard(), resync: () => undefined });
    await new Transactions(schema.dataSource).run((unit) =>
      new OrderDecisions().onDecided(unit, [{ transactionId: orderId, outcome: 'commit', reason: null }]),
    );
    await announced;
    unsubscribe();
  }

  it('is woken by a decision announced just after the order was read PENDING', async () => {
    const orderId = await pendingOrder();
    // The window: the read saw PENDING, and the decision is committed and announced before the
    // reader goes on to wait. A waiter registered only after the read would miss it.
    const read = database.query.bind(database);
    let reads = 0;
    jest.spyOn(database, 'query').mockImplementation(async (sql: string, parameters?: unknown[]) => {
      const rows = await read(sql, parameters);
      if (++reads === 1) await decide(orderId);
      return rows;
    });
    let answer: { status: string } | undefined;
    void orders.waitForDecision(orderId, customer, 30_000).then((order) => (answer = order));
    try {
      await eventually(() => answer, { timeoutMs: 5_000, what: 'the wait to be woken by the decision' });
    } finally {
      waits.resync(); // a missed wake-up would otherwise sleep its 30 s
    }
    expect(answer).toMatchObject({ id: orderId, status: 'CONFIRMED' });
    expect(reads).toBe(2); // the read that raced the decision, and the one it woke
  });

  it('answers at once an order already decided, and leaves no waiter behind', async () => {
    const orderId = await pendingOrder();
    await decide(orderId);
    expect(await orders.waitForDecision(orderId, customer, 30_000)).toMatchObject({ status: 'CONFIRMED' });
    // The wake-up registered before the read was withdrawn: the one waiter's room is free again.
    expect(waits.hasRoom).toBe(true);
  });

  it('waits out the time, reading the order once more at the end, when nothing is decided', async () => {
    const orderId = await pendingOrder();
    const read = jest.spyOn(database, 'query');
    expect(await orders.waitForDecision(orderId, customer, 50)).toMatchObject({ status: 'PENDING' });
    expect(read).toHaveBeenCalledTimes(2);
  });
});

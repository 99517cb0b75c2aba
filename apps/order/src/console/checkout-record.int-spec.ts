import { randomUUID } from 'node:crypto';
import { Ack, createMessage, Vote } from '@shop/contracts';
import { silentLogger } from '@shop/messaging';
import { Transactions } from '@shop/outbox';
import { Coordinator } from '@shop/two-phase-commit';
import { handleAlone } from '../../../../test/support/batches';
import { createTestSchema, type TestSchema } from '../../../../test/support/postgres';
import { orderMigrations } from '../migrations';
import { OrderDecisions } from '../orders/order-decisions';
import { readCheckoutRecord } from './checkout-record';
import { sequenceOf } from './sequence';

/**
 * One checkout's sequence as the console reads it back from the order service's real tables,
 * after a real run of the coordinator (money before stock: payment asked first), with a decision
 * re-sent by the sweep before its last ack.
 */
describe("a checkout's sequence, read from the coordinator's records", () => {
  let schema: TestSchema;
  let transactions: Transactions;
  let coordinator: Coordinator<'payment' | 'inventory'>;

  beforeAll(async () => {
    schema = await createTestSchema('console_sequence', orderMigrations);
    transactions = new Transactions(schema.dataSource);
    coordinator = new Coordinator({
      participants: ['payment', 'inventory'],
      stages: [['payment']],
      transactions,
      hooks: new OrderDecisions(),
      logger: silentLogger,
    });
  });
  afterAll(() => schema?.drop());

  async function place(): Promise<string> {
    const id = randomUUID();
    await transactions.run(async (unit) => {
      await unit.manager.query(
        `INSERT INTO orders (id, customer_id, status, total, currency, request_hash) VALUES ($1, 'alice', 'PENDING', 200, 'EUR', 'h')`,
        [id],
      );
      await unit.manager.query(
        `INSERT INTO order_items (order_id, sku, quantity, unit_price) VALUES ($1, 'SKU-1', 2, 100)`,
        [id],
      );
      await coordinator.begin(unit, {
        id,
        timeoutMs: 60_000,
        requests: {
          payment: { customerId: 'alice', amount: 200, currency: 'EUR' },
          inventory: { items: [{ sku: 'SKU-1', quantity: 2 }] },
        },
      });
    });
    return id;
  }
  const vote = (transactionId: string, sender: 'payment' | 'inventory') =>
    handleAlone(
      transactions,
      coordinator,
      createMessage(Vote, { transactionId, sender, recipient: 'order', payload: { vote: 'yes' } }),
    );
  const ack = (transactionId: string, sender: 'payment' | 'inventory') =>
    handleAlone(
      transactions,
      coordinator,
      createMessage(Ack, { transactionId, sender, recipient: 'order', payload: { outcome: 'commit' } }),
    );

  it('gives every step of a real checkout, in order, in the lane of the service that took it', async () => {
    const id = await place();
    await vote(id, 'payment'); // releases inventory's prepare
    await vote(id, 'inventory'); // the last yes: COMMIT
    await ack(id, 'payment');
    // Inventory's re-send comes due (its backoff passed), and the sweep sends the decision again.
    await schema.dataSource.query(
      `UPDATE tpc_participants SET next_resend_at = now() - interval '1 hour' WHERE transaction_id = $1 AND participant = 'inventory'`,
      [id],
    );
    expect(await coordinator.resendUnacked()).toBe(1);
    await ack(id, 'inventory');

    const record = await readCheckoutRecord(schema.dataSource, id);
    expect(record?.order).toMatchObject({ id, customerId: 'alice', status: 'CONFIRMED', total: '200' });
    expect(record?.transaction).toMatchObject({ state: 'COMMITTED' });
    expect(record?.transaction?.completedAt).toBeInstanceOf(Date);
    const steps = sequenceOf(record!, {}, ['payment']);
    expect(steps.map((step) => [step.kind, step.service, step.vote])).toEqual([
      ['order-written', 'order', undefined],
      ['prepare', 'payment', undefined],
      ['vote', 'payment', 'yes'],
      ['prepare', 'inventory', undefined],
      ['vote', 'inventory', 'yes'],
      ['decision', 'order', undefined],
      ['ack', 'payment', undefined],
      ['resend', 'inventory', undefined],
      ['ack', 'inventory', undefined],
    ]);
    // The times are the database's, never decreasing; a released stage's prepare goes with the vote that released it.
    const times = steps.map((step) => step.at.getTime());
    expect([...times].sort((a, b) => a - b)).toEqual(times);
    expect(steps[3].at).toEqual(steps[2].at);
    expect(steps[0].at).toEqual(record!.order.createdAt);
    expect(steps[5].label).toBe('decision: COMMIT');
    expect(steps.every((step) => step.rule.length > 0)).toBe(true);
  });

  it('shows an abort with its reason, and a participant never asked (decided first) has no prepare', async () => {
    const id = await place();
    await handleAlone(
      transactions,
      coordinator,
      createMessage(Vote, {
        transactionId: id,
        sender: 'payment',
        recipient: 'order',
        payload: { vote: 'no', reason: 'INSUFFICIENT_FUNDS' },
      }),
    );
    const record = await readCheckoutRecord(schema.dataSource, id);
    const steps = sequenceOf(record!, {}, ['payment']);
    expect(steps.map((step) => [step.kind, step.service, step.vote])).toEqual([
      ['order-written', 'order', undefined],
      ['prepare', 'payment', undefined],
      ['vote', 'payment', 'no'],
      ['decision', 'order', undefined],
    ]);
    expect(steps[2].label).toContain('INSUFFICIENT_FUNDS');
    expect(steps[3].label).toBe('decision: ABORT (INSUFFICIENT_FUNDS)');
    expect(record?.order.status).toBe('CANCELLED');
  });

  it('knows no checkout for an unknown id or a malformed one', async () => {
    expect(await readCheckoutRecord(schema.dataSource, randomUUID())).toBeUndefined();
    expect(await readCheckoutRecord(schema.dataSource, "'; DROP TABLE orders; --")).toBeUndefined();
  });
});

import { randomUUID } from 'node:crypto';
import { createMessage, Decision, Prepare } from '@shop/contracts';
import { Transactions } from '@shop/outbox';
import {
  createDeadlockCountingDatabase,
  runCrossingBatches,
  sentMessages,
  sortedCheckouts,
} from '../../../../test/support/crossing-batches';
import type { TestSchema } from '../../../../test/support/postgres';
import { paymentMigrations } from '../migrations';
import { PaymentHolds } from './payment-holds';

/** The payment's resource under the participant, on a real Postgres: two replicas at once. */
describe('payment holds in two participant replicas', () => {
  let schema: TestSchema;
  beforeAll(async () => {
    schema = await createDeadlockCountingDatabase('payment_replicas', paymentMigrations);
  });
  afterAll(() => schema?.drop());
  beforeEach(async () => {
    await schema.dataSource.query(`TRUNCATE holds, accounts, tpc_participant_transactions, inbox, outbox`);
    await schema.dataSource.query(
      `INSERT INTO accounts (customer_id, balance, deposited) VALUES ('customer-x', 1000, 1000), ('customer-y', 1000, 1000)`,
    );
  });

  const prepare = (transactionId: string, customerId: string) =>
    createMessage(Prepare, {
      transactionId,
      sender: 'order',
      recipient: 'payment',
      payload: {
        participant: 'payment',
        deadline: new Date(Date.now() + 60_000).toISOString(),
        customerId,
        amount: 100,
        currency: 'EUR',
      },
    });
  const decision = (transactionId: string, outcome: 'commit' | 'abort') =>
    createMessage(Decision, { transactionId, sender: 'order', recipient: 'payment', payload: { outcome } });
  const accounts = () =>
    schema.dataSource.query<Array<{ customer_id: string; balance: string; held: string; captured: string }>>(
      `SELECT customer_id, balance::text, held::text, captured::text FROM accounts ORDER BY customer_id`,
    );
  const sent = () => sentMessages(schema);
  const checkouts = sortedCheckouts;

  it('handles crossing batches of prepares (one takes account Y then X, the other X then Y) without a deadlock', async () => {
    const [t1, t2, t3, t4] = checkouts();
    const outcome = await runCrossingBatches(schema, 'payment', () => new PaymentHolds(), [
      [prepare(t1, 'customer-y'), prepare(t2, 'customer-x')],
      [prepare(t3, 'customer-x'), prepare(t4, 'customer-y')],
    ]);
    expect(outcome.deadlocks).toBe(0);
    expect(outcome.handled).toEqual([
      [true, true],
      [true, true],
    ]);
    expect(outcome.calls).toHaveLength(4); // each batch ran once: none was rolled back and run again
    expect((await sent()).sort()).toEqual([t1, t2, t3, t4].map((id) => [id, 'vote', { vote: 'yes' }]));
    expect(await accounts()).toEqual([
      { customer_id: 'customer-x', balance: '800', held: '200', captured: '0' },
      { customer_id: 'customer-y', balance: '800', held: '200', captured: '0' },
    ]);
  });

  it('handles crossing batches of decisions without a deadlock', async () => {
    const [t1, t2, t3, t4] = checkouts();
    await runCrossingBatches(schema, 'payment', () => new PaymentHolds(), [
      [prepare(t1, 'customer-y'), prepare(t3, 'customer-x')],
      [prepare(t2, 'customer-x'), prepare(t4, 'customer-y')],
    ]);
    const outcome = await runCrossingBatches(schema, 'payment', () => new PaymentHolds(), [
      [decision(t1, 'commit'), decision(t2, 'commit')],
      [decision(t3, 'abort'), decision(t4, 'abort')],
    ]);
    expect(outcome.deadlocks).toBe(0);
    expect(outcome.calls).toHaveLength(4);
    expect(await accounts()).toEqual([
      { customer_id: 'customer-x', balance: '900', held: '0', captured: '100' },
      { customer_id: 'customer-y', balance: '900', held: '0', captured: '100' },
    ]);
  });

  it('judges a set of prepares in turn, each against what the ones before it held, and writes nothing for a no', async () => {
    const [t1, t2, t3, t4, t5] = [randomUUID(), randomUUID(), randomUUID(), randomUUID(), randomUUID()];
    const request = (customerId: string, amount: number) => ({
      participant: 'payment' as const,
      deadline: new Date(Date.now() + 60_000).toISOString(),
      customerId,
      amount,
      currency: 'EUR',
    });
    const holds = new PaymentHolds();
    const votes = await new Transactions(schema.dataSource).run((unit) =>
      holds.prepare(unit, [
        { transactionId: t1, request: request('customer-x', 700) },
        { transactionId: t2, request: request('customer-x', 400) }, // 300 left
        { transactionId: t3, request: request('customer-nobody', 1) },
        { transactionId: t4, request: request('customer-x', 300) },
        { transactionId: t5, request: request('customer-y', 50) },
      ]),
    );
    expect(votes).toEqual([
      { vote: 'yes' },
      { vote: 'no', reason: 'INSUFFICIENT_FUNDS' },
      { vote: 'no', reason: 'UNKNOWN_ACCOUNT' },
      { vote: 'yes' },
      { vote: 'yes' },
    ]);
    const accounts = () =>
      schema.dataSource.query<Array<{ customer_id: string; balance: string; held: string; captured: string }>>(
        `SELECT customer_id, balance, held, captured FROM accounts ORDER BY customer_id`,
      );
    expect(await accounts()).toEqual([
      { customer_id: 'customer-x', balance: '0', held: '1000', captured: '0' },
      { customer_id: 'customer-y', balance: '950', held: '50', captured: '0' },
    ]);
    const held = await schema.dataSource.query<Array<{ transaction_id: string }>>(
      `SELECT transaction_id FROM holds ORDER BY transaction_id`,
    );
    expect(held.map((row) => row.transaction_id)).toEqual([t1, t4, t5].sort());
    // A set of decisions on the same account: each checkout's amount counts (an UPDATE changes a row once).
    await new Transactions(schema.dataSource).run(async (unit) => {
      await holds.commit(unit, [t1, t4]);
      await holds.abort(unit, [t5]);
    });
    expect(await accounts()).toEqual([
      { customer_id: 'customer-x', balance: '0', held: '0', captured: '1000' },
      { customer_id: 'customer-y', balance: '1000', held: '0', captured: '0' },
    ]);
  });
});

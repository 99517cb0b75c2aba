import { createMessage, Decision, Prepare } from '@shop/contracts';
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
});

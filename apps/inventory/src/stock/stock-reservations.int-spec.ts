import { createMessage, Decision, Prepare } from '@shop/contracts';
import {
  createDeadlockCountingDatabase,
  runCrossingBatches,
  sentMessages,
  sortedCheckouts,
} from '../../../../test/support/crossing-batches';
import type { TestSchema } from '../../../../test/support/postgres';
import { inventoryMigrations } from '../migrations';
import { StockReservations } from './stock-reservations';

/** The inventory's resource under the participant, on a real Postgres: two replicas at once. */
describe('stock reservations in two participant replicas', () => {
  let schema: TestSchema;
  beforeAll(async () => {
    schema = await createDeadlockCountingDatabase('inventory_replicas', inventoryMigrations);
  });
  afterAll(() => schema?.drop());
  beforeEach(async () => {
    await schema.dataSource.query(`TRUNCATE reservations, stock, tpc_participant_transactions, inbox, outbox`);
    await schema.dataSource.query(
      `INSERT INTO stock (sku, available, stocked) VALUES ('SKU-X', 10, 10), ('SKU-Y', 10, 10)`,
    );
  });

  const prepare = (transactionId: string, sku: string) =>
    createMessage(Prepare, {
      transactionId,
      sender: 'order',
      recipient: 'inventory',
      payload: {
        participant: 'inventory',
        deadline: new Date(Date.now() + 60_000).toISOString(),
        items: [{ sku, quantity: 1 }],
      },
    });
  const decision = (transactionId: string, outcome: 'commit' | 'abort') =>
    createMessage(Decision, { transactionId, sender: 'order', recipient: 'inventory', payload: { outcome } });
  const stock = () =>
    schema.dataSource.query<Array<{ sku: string; available: number; reserved: number; sold: number }>>(
      `SELECT sku, available, reserved, sold FROM stock ORDER BY sku`,
    );
  const sent = () => sentMessages(schema);
  const checkouts = sortedCheckouts;

  it('handles crossing batches of prepares (one takes SKU Y then X, the other X then Y) without a deadlock', async () => {
    const [t1, t2, t3, t4] = checkouts();
    const outcome = await runCrossingBatches(schema, 'inventory', () => new StockReservations(), [
      [prepare(t1, 'SKU-Y'), prepare(t2, 'SKU-X')],
      [prepare(t3, 'SKU-X'), prepare(t4, 'SKU-Y')],
    ]);
    expect(outcome.deadlocks).toBe(0);
    expect(outcome.handled).toEqual([
      [true, true],
      [true, true],
    ]);
    expect(outcome.calls).toHaveLength(4); // each batch ran once: none was rolled back and run again
    // As one at a time: plenty of stock, so every line is reserved.
    expect((await sent()).sort()).toEqual([t1, t2, t3, t4].map((id) => [id, 'vote', { vote: 'yes' }]));
    expect(await stock()).toEqual([
      { sku: 'SKU-X', available: 8, reserved: 2, sold: 0 },
      { sku: 'SKU-Y', available: 8, reserved: 2, sold: 0 },
    ]);
  });

  it('handles crossing batches of decisions without a deadlock', async () => {
    const [t1, t2, t3, t4] = checkouts();
    await runCrossingBatches(schema, 'inventory', () => new StockReservations(), [
      [prepare(t1, 'SKU-Y'), prepare(t3, 'SKU-X')],
      [prepare(t2, 'SKU-X'), prepare(t4, 'SKU-Y')],
    ]);
    const outcome = await runCrossingBatches(schema, 'inventory', () => new StockReservations(), [
      [decision(t1, 'commit'), decision(t2, 'commit')],
      [decision(t3, 'abort'), decision(t4, 'abort')],
    ]);
    expect(outcome.deadlocks).toBe(0);
    expect(outcome.calls).toEqual(
      expect.arrayContaining([`commit ${t1}`, `commit ${t2}`, `abort ${t3}`, `abort ${t4}`]),
    );
    expect(outcome.calls).toHaveLength(4);
    expect(await stock()).toEqual([
      { sku: 'SKU-X', available: 9, reserved: 0, sold: 1 },
      { sku: 'SKU-Y', available: 9, reserved: 0, sold: 1 },
    ]);
  });
});

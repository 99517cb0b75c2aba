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

  it('judges a set of prepares in turn, each against what the ones before it reserved, and writes nothing for a no', async () => {
    const [t1, t2, t3, t4, t5] = [randomUUID(), randomUUID(), randomUUID(), randomUUID(), randomUUID()];
    const line = (sku: string, quantity: number) => ({ sku, quantity });
    const request = (...items: Array<{ sku: string; quantity: number }>) => ({
      participant: 'inventory' as const,
      deadline: new Date(Date.now() + 60_000).toISOString(),
      items,
    });
    const reservations = new StockReservations();
    const votes = await new Transactions(schema.dataSource).run((unit) =>
      reservations.prepare(unit, [
        { transactionId: t1, request: request(line('SKU-X', 6), line('SKU-Y', 1)) },
        { transactionId: t2, request: request(line('SKU-Y', 2), line('SKU-X', 6)) }, // X has 4 left
        { transactionId: t3, request: request(line('SKU-X', 1), line('SKU-NONE', 1)) },
        { transactionId: t4, request: request(line('SKU-X', 4)) }, // what t2 did not take
        { transactionId: t5, request: request(line('SKU-Y', 1)) },
      ]),
    );
    expect(votes).toEqual([
      { vote: 'yes' },
      { vote: 'no', reason: 'OUT_OF_STOCK' },
      { vote: 'no', reason: 'UNKNOWN_SKU' },
      { vote: 'yes' },
      { vote: 'yes' },
    ]);
    expect(await stock()).toEqual([
      { sku: 'SKU-X', available: 0, reserved: 10, sold: 0 },
      { sku: 'SKU-Y', available: 8, reserved: 2, sold: 0 },
    ]);
    const reserved = await schema.dataSource.query<Array<{ transaction_id: string; sku: string; quantity: number }>>(
      `SELECT transaction_id, sku, quantity FROM reservations ORDER BY transaction_id, sku`,
    );
    expect(reserved).toEqual(
      [
        { transaction_id: t1, sku: 'SKU-X', quantity: 6 },
        { transaction_id: t1, sku: 'SKU-Y', quantity: 1 },
        { transaction_id: t4, sku: 'SKU-X', quantity: 4 },
        { transaction_id: t5, sku: 'SKU-Y', quantity: 1 },
      ].sort((a, b) => a.transaction_id.localeCompare(b.transaction_id) || a.sku.localeCompare(b.sku)),
    );
    // A set of decisions on the same SKU: each checkout's quantity counts (an UPDATE changes a row once).
    await new Transactions(schema.dataSource).run(async (unit) => {
      await reservations.commit(unit, [t1, t4]);
      await reservations.abort(unit, [t5]);
    });
    expect(await stock()).toEqual([
      { sku: 'SKU-X', available: 0, reserved: 0, sold: 10 },
      { sku: 'SKU-Y', available: 9, reserved: 0, sold: 1 },
    ]);
  });
});

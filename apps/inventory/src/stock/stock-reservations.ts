import { Injectable } from '@nestjs/common';
import type { VoteOf } from '@shop/contracts';
import type { UnitOfWork } from '@shop/outbox';
import type { ParticipantResource, PrepareOf, ResourceBatch } from '@shop/two-phase-commit';

/**
 * The inventory's part of a checkout: reserve every line or none, then sell or release. Each
 * step takes a set of checkouts in a statement or two. Stock rows are always locked in SKU
 * order: a batch's all at once first (`lock`), or, for one checkout alone, by each step's own
 * first statement, so concurrent checkouts never deadlock on each other, and a hot SKU's row is
 * locked until the commit.
 */
@Injectable()
export class StockReservations implements ParticipantResource<'inventory'> {
  /** The stock rows of the batch's prepares' lines and of its decided checkouts' reservations. */
  async lock(unit: UnitOfWork<unknown>, { prepares, decided }: ResourceBatch<'inventory'>): Promise<void> {
    await unit.manager.query(
      `SELECT 1 FROM stock
        WHERE sku IN (SELECT unnest($1::text[]) UNION SELECT sku FROM reservations WHERE transaction_id = ANY($2::uuid[]))
        ORDER BY sku FOR UPDATE`,
      [prepares.flatMap(({ request }) => request.items.map((line) => line.sku)), decided],
    );
  }

  /** Reads the stock of every line, judges the checkouts in turn, then reserves the yes votes' lines in one statement. */
  async prepare(
    unit: UnitOfWork<unknown>,
    prepares: ReadonlyArray<PrepareOf<'inventory'>>,
  ): Promise<Array<VoteOf<'inventory'>>> {
    const rows = await unit.manager.query<Array<{ sku: string; available: number }>>(
      `SELECT sku, available FROM stock WHERE sku = ANY($1::text[]) ORDER BY sku FOR UPDATE`,
      [[...new Set(prepares.flatMap(({ request }) => request.items.map((line) => line.sku)))]],
    );
    const available = new Map(rows.map((row) => [row.sku, row.available]));
    const reserved: Array<{ transactionId: string; sku: string; quantity: number }> = [];
    const votes = prepares.map(({ transactionId, request: { items } }): VoteOf<'inventory'> => {
      // Each SKU is on an order once (the contract), so each line is judged against what is left.
      if (items.some((line) => !available.has(line.sku))) return { vote: 'no', reason: 'UNKNOWN_SKU' };
      if (items.some((line) => available.get(line.sku)! < line.quantity)) return { vote: 'no', reason: 'OUT_OF_STOCK' };
      for (const line of items) {
        available.set(line.sku, available.get(line.sku)! - line.quantity);
        reserved.push({ transactionId, ...line });
      }
      return { vote: 'yes' };
    });
    if (reserved.length > 0) {
      await unit.manager.query(
        `WITH line AS (
           SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[]) AS line(transaction_id, sku, quantity)),
         reserved AS (
           UPDATE stock s SET available = s.available - l.quantity, reserved = s.reserved + l.quantity, updated_at = now()
             FROM (SELECT sku, sum(quantity)::int AS quantity FROM line GROUP BY sku) l WHERE s.sku = l.sku)
         INSERT INTO reservations (transaction_id, sku, quantity) SELECT transaction_id, sku, quantity FROM line`,
        [reserved.map((r) => r.transactionId), reserved.map((r) => r.sku), reserved.map((r) => r.quantity)],
      );
    }
    return votes;
  }

  async commit(unit: UnitOfWork<unknown>, transactionIds: readonly string[]): Promise<void> {
    await unit.manager.query(
      `WITH locked AS (${LOCK_RESERVED})
       UPDATE stock s SET reserved = s.reserved - l.quantity, sold = s.sold + l.quantity, updated_at = now()
         FROM locked l WHERE s.sku = l.sku`,
      [transactionIds],
    );
  }

  async abort(unit: UnitOfWork<unknown>, transactionIds: readonly string[]): Promise<void> {
    await unit.manager.query(
      `WITH locked AS (${LOCK_RESERVED})
       UPDATE stock s SET reserved = s.reserved - l.quantity, available = s.available + l.quantity, updated_at = now()
         FROM locked l WHERE s.sku = l.sku`,
      [transactionIds],
    );
  }
}

/**
 * The checkouts' reserved stock rows with their quantity summed (an UPDATE changes a row once),
 * locked in SKU order like prepare locks them.
 */
const LOCK_RESERVED = `
  SELECT s.sku, r.quantity FROM stock s
    JOIN (SELECT sku, sum(quantity)::int AS quantity FROM reservations WHERE transaction_id = ANY($1::uuid[]) GROUP BY sku) r
      ON r.sku = s.sku
   ORDER BY s.sku FOR UPDATE OF s`;

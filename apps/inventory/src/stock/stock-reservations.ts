import { Injectable } from '@nestjs/common';
import type { VoteOf } from '@shop/contracts';
import type { UnitOfWork } from '@shop/outbox';
import type { ParticipantResource, PrepareRequestOf, ResourceBatch } from '@shop/two-phase-commit';

/**
 * The inventory's part of a checkout: reserve every line or none, then sell or release. Stock
 * rows are always locked in SKU order: a batch's all at once first (`lock`), or, for a message
 * alone, by the one statement of each step, so concurrent checkouts never deadlock on each
 * other, and a hot SKU's row is locked until the commit.
 */
@Injectable()
export class StockReservations implements ParticipantResource<'inventory'> {
  /** `prepare` reserves only if every line fits, in one statement: a "no" has written nothing. */
  readonly refusesWithoutWriting = true;

  /** The stock rows of the batch's prepares' lines and of its decided checkouts' reservations. */
  async lock(unit: UnitOfWork<unknown>, { prepares, decided }: ResourceBatch<'inventory'>): Promise<void> {
    await unit.manager.query(
      `SELECT 1 FROM stock
        WHERE sku IN (SELECT unnest($1::text[]) UNION SELECT sku FROM reservations WHERE transaction_id = ANY($2::uuid[]))
        ORDER BY sku FOR UPDATE`,
      [prepares.flatMap(({ request }) => request.items.map((line) => line.sku)), decided],
    );
  }

  async prepare(
    unit: UnitOfWork<unknown>,
    transactionId: string,
    request: PrepareRequestOf<'inventory'>,
  ): Promise<VoteOf<'inventory'>> {
    // Locks the rows, judges them, and only if every line fits, reserves and records each line.
    const [{ refusal }] = await unit.manager.query<Array<{ refusal: 'UNKNOWN_SKU' | 'OUT_OF_STOCK' | null }>>(
      `WITH locked AS (
         SELECT s.sku, s.available, line.quantity
           FROM stock s JOIN unnest($2::text[], $3::int[]) AS line(sku, quantity) ON line.sku = s.sku
          ORDER BY s.sku FOR UPDATE OF s),
       verdict AS (
         SELECT CASE WHEN count(*) < cardinality($2::text[]) THEN 'UNKNOWN_SKU'
                     WHEN bool_or(available < quantity) THEN 'OUT_OF_STOCK' END AS refusal
           FROM locked),
       reserved AS (
         UPDATE stock s SET available = s.available - l.quantity, reserved = s.reserved + l.quantity, updated_at = now()
           FROM locked l, verdict WHERE verdict.refusal IS NULL AND s.sku = l.sku),
       recorded AS (
         INSERT INTO reservations (transaction_id, sku, quantity)
         SELECT $1, l.sku, l.quantity FROM locked l, verdict WHERE verdict.refusal IS NULL)
       SELECT refusal FROM verdict`,
      [transactionId, request.items.map((line) => line.sku), request.items.map((line) => line.quantity)],
    );
    return refusal ? { vote: 'no', reason: refusal } : { vote: 'yes' };
  }

  async commit(unit: UnitOfWork<unknown>, transactionId: string): Promise<void> {
    await unit.manager.query(
      `WITH locked AS (${LOCK_RESERVED})
       UPDATE stock s SET reserved = s.reserved - l.quantity, sold = s.sold + l.quantity, updated_at = now()
         FROM locked l WHERE s.sku = l.sku`,
      [transactionId],
    );
  }

  async abort(unit: UnitOfWork<unknown>, transactionId: string): Promise<void> {
    await unit.manager.query(
      `WITH locked AS (${LOCK_RESERVED})
       UPDATE stock s SET reserved = s.reserved - l.quantity, available = s.available + l.quantity, updated_at = now()
         FROM locked l WHERE s.sku = l.sku`,
      [transactionId],
    );
  }
}

/** The transaction's reserved stock rows, locked in SKU order like prepare locks them. */
const LOCK_RESERVED = `
  SELECT s.sku, r.quantity FROM stock s JOIN reservations r ON r.sku = s.sku
   WHERE r.transaction_id = $1 ORDER BY s.sku FOR UPDATE OF s`;

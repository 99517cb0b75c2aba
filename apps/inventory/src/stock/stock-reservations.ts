import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import type { PreparePayload, VotePayload } from '@shop/contracts';
import type { ParticipantResource } from '@shop/two-phase-commit';

/**
 * The inventory's part of a checkout: reserve every line or none, then sell or release. Rows
 * are locked in SKU order, so concurrent checkouts never deadlock on each other.
 */
@Injectable()
export class StockReservations implements ParticipantResource<'inventory'> {
  async prepare(
    manager: EntityManager,
    transactionId: string,
    request: Extract<PreparePayload, { participant: 'inventory' }>,
  ): Promise<VotePayload> {
    const lines = [...request.items].sort((a, b) => (a.sku < b.sku ? -1 : a.sku > b.sku ? 1 : 0));
    const skus = lines.map((line) => line.sku);
    const quantities = lines.map((line) => line.quantity);
    const locked = await manager.query<Array<{ sku: string; available: number }>>(
      `SELECT sku, available FROM stock WHERE sku = ANY($1::text[]) ORDER BY sku FOR UPDATE`,
      [skus],
    );
    if (locked.length < lines.length) return { vote: 'no', reason: 'UNKNOWN_SKU' };
    const available = new Map(locked.map((row) => [row.sku, row.available]));
    if (lines.some((line) => available.get(line.sku)! < line.quantity)) return { vote: 'no', reason: 'OUT_OF_STOCK' };
    await manager.query(
      `UPDATE stock s SET available = s.available - w.quantity, reserved = s.reserved + w.quantity, updated_at = now()
         FROM unnest($1::text[], $2::int[]) AS w(sku, quantity) WHERE s.sku = w.sku`,
      [skus, quantities],
    );
    await manager.query(
      `INSERT INTO reservations (transaction_id, sku, quantity) SELECT $1, unnest($2::text[]), unnest($3::int[])`,
      [transactionId, skus, quantities],
    );
    return { vote: 'yes' };
  }

  async commit(manager: EntityManager, transactionId: string): Promise<void> {
    await this.lockReserved(manager, transactionId);
    await manager.query(
      `UPDATE stock s SET reserved = s.reserved - r.quantity, sold = s.sold + r.quantity, updated_at = now()
         FROM reservations r WHERE r.transaction_id = $1 AND s.sku = r.sku`,
      [transactionId],
    );
  }

  async abort(manager: EntityManager, transactionId: string): Promise<void> {
    await this.lockReserved(manager, transactionId);
    await manager.query(
      `UPDATE stock s SET reserved = s.reserved - r.quantity, available = s.available + r.quantity, updated_at = now()
         FROM reservations r WHERE r.transaction_id = $1 AND s.sku = r.sku`,
      [transactionId],
    );
  }

  /** Locks the transaction's stock rows in SKU order, like prepare does. */
  private async lockReserved(manager: EntityManager, transactionId: string): Promise<void> {
    await manager.query(
      `SELECT s.sku FROM stock s JOIN reservations r ON r.sku = s.sku
        WHERE r.transaction_id = $1 ORDER BY s.sku FOR UPDATE OF s`,
      [transactionId],
    );
  }
}

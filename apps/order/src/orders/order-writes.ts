import type { EntityManager } from 'typeorm';
import { compareCodePoints } from '@shop/contracts';

/** A new order as written: its row and its priced lines. */
export interface NewOrder {
  id: string;
  customerId: string;
  total: number;
  idempotencyKey: string | null;
  requestHash: string;
  items: Array<{ sku: string; quantity: number; unit_price: number }>;
}

/** The unit prices of `skus` (those that exist), in one read for a whole group of orders. */
export async function pricesOf(manager: EntityManager, skus: readonly string[]): Promise<Map<string, number>> {
  const rows = await manager.query<Array<{ sku: string; unit_price: string }>>(
    `SELECT sku, unit_price FROM products WHERE sku = ANY($1::text[])`,
    [[...new Set(skus)]],
  );
  return new Map(rows.map((row) => [row.sku, Number(row.unit_price)]));
}

/**
 * Writes `orders` PENDING with their lines, in one statement, skipping each whose customer used
 * its Idempotency-Key before (or earlier in `orders`: the first wins). Rows go in by customer and
 * key, so two groups written at once take those keys' locks in one order and never deadlock.
 * Answers the written ones: id → created_at.
 */
export async function insertOrders(
  manager: EntityManager,
  orders: readonly NewOrder[],
  currency: string,
): Promise<Map<string, Date>> {
  if (orders.length === 0) return new Map();
  const sorted = [...orders].sort(
    (a, b) =>
      compareCodePoints(a.customerId, b.customerId) ||
      compareCodePoints(a.idempotencyKey ?? '', b.idempotencyKey ?? ''),
  );
  const lines = sorted.flatMap((order) => order.items.map((item) => ({ orderId: order.id, ...item })));
  const rows = await manager.query<Array<{ id: string; created_at: Date }>>(
    `WITH placed AS (
       INSERT INTO orders (id, customer_id, status, total, currency, idempotency_key, request_hash)
       SELECT o.id, o.customer_id, 'PENDING', o.total, $6, o.idempotency_key, o.request_hash
         FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::text[], $5::text[])
              WITH ORDINALITY AS o(id, customer_id, total, idempotency_key, request_hash, n)
        ORDER BY o.n
       ON CONFLICT (customer_id, idempotency_key) DO NOTHING RETURNING id, created_at),
     items AS (
       INSERT INTO order_items (order_id, sku, quantity, unit_price)
       SELECT line.order_id, line.sku, line.quantity, line.unit_price
         FROM unnest($7::uuid[], $8::text[], $9::int[], $10::bigint[]) AS line(order_id, sku, quantity, unit_price)
         JOIN placed ON placed.id = line.order_id)
     SELECT id, created_at FROM placed`,
    [
      sorted.map((order) => order.id),
      sorted.map((order) => order.customerId),
      sorted.map((order) => order.total),
      sorted.map((order) => order.idempotencyKey),
      sorted.map((order) => order.requestHash),
      currency,
      lines.map((line) => line.orderId),
      lines.map((line) => line.sku),
      lines.map((line) => line.quantity),
      lines.map((line) => line.unit_price),
    ],
  );
  return new Map(rows.map((row) => [row.id, row.created_at]));
}

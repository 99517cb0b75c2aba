// The orders table: its rows as this service reads them, and its set-based writes.
import type { EntityManager } from 'typeorm';
import { compareCodePoints } from '@shop/contracts';
import type { OrderView } from './order.schemas';

/** An order as read from the orders table (ORDER_COLUMNS). */
export interface OrderRow {
  id: string;
  customer_id: string;
  status: OrderView['status'];
  reason: string | null;
  total: string;
  currency: string;
  request_hash: string;
  created_at: Date;
  decided_at: Date | null;
  items: Array<{ sku: string; quantity: number; unit_price: number }>;
}

export const ORDER_COLUMNS = `
  o.id, o.customer_id, o.status, o.reason, o.total, o.currency, o.request_hash, o.created_at, o.decided_at,
  (SELECT json_agg(json_build_object('sku', i.sku, 'quantity', i.quantity, 'unit_price', i.unit_price) ORDER BY i.sku COLLATE "C")
     FROM order_items i WHERE i.order_id = o.id) AS items`;
export const ORDER_SELECT = `SELECT ${ORDER_COLUMNS} FROM orders o`;

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

/** The customer's order with this key, and whether the key is past retention (by the database's clock). */
export async function findByKey(
  manager: EntityManager,
  customerId: string,
  key: string,
  retentionSeconds: number,
): Promise<{ order: OrderRow; expired: boolean } | undefined> {
  const [row] = await manager.query<Array<OrderRow & { expired: boolean }>>(
    `SELECT ${ORDER_COLUMNS}, o.created_at < now() - make_interval(secs => $3) AS expired
       FROM orders o WHERE o.customer_id = $1 AND o.idempotency_key = $2`,
    [customerId, key, retentionSeconds],
  );
  return row && { order: row, expired: row.expired };
}

export function toView(row: OrderRow): OrderView {
  return {
    id: row.id,
    customerId: row.customer_id,
    items: row.items.map((item) => ({
      sku: item.sku,
      quantity: item.quantity,
      unitPrice: Number(item.unit_price),
      lineTotal: item.quantity * Number(item.unit_price),
    })),
    total: Number(row.total),
    currency: row.currency,
    status: row.status,
    ...(row.reason ? { reason: row.reason } : {}),
    createdAt: row.created_at.toISOString(),
    ...(row.decided_at ? { decidedAt: row.decided_at.toISOString() } : {}),
  };
}

import { createHash, randomUUID } from 'node:crypto';
import { Inject, Injectable, NotFoundException, UnprocessableEntityException } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { RequestDatabase, SERVICE_CONFIG } from '@shop/service-kit';
import { compareCodePoints } from '@shop/contracts';
import { Coordinator } from '@shop/two-phase-commit';
import type { OrderConfig } from '../config';
import { DecisionWaits } from './decision-waits';
import { OrderView, PlaceOrderBody } from './order.schemas';

interface OrderRow {
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

const ORDER_SELECT = `
  SELECT o.id, o.customer_id, o.status, o.reason, o.total, o.currency, o.request_hash, o.created_at, o.decided_at,
         (SELECT json_agg(json_build_object('sku', i.sku, 'quantity', i.quantity, 'unit_price', i.unit_price) ORDER BY i.sku COLLATE "C")
            FROM order_items i WHERE i.order_id = o.id) AS items
    FROM orders o`;

export interface PlacedOrder {
  order: OrderView;
  /** True when an Idempotency-Key matched an earlier identical request. */
  replayed: boolean;
}

@Injectable()
export class OrdersService {
  constructor(
    private readonly database: RequestDatabase,
    private readonly coordinator: Coordinator,
    private readonly waits: DecisionWaits,
    @Inject(SERVICE_CONFIG) private readonly config: OrderConfig,
  ) {}

  /**
   * Prices the order and, in ONE local transaction, stores it PENDING with its items and begins
   * the two-phase commit (one prepare per participant, through the outbox). A request with an
   * Idempotency-Key used before gets that key's order (or 422 if the request differs).
   */
  async place(body: PlaceOrderBody, idempotencyKey?: string): Promise<PlacedOrder> {
    const requestHash = hashRequest(body);
    // Orders placed at the same time share a commit.
    return this.database.sharedTransaction(async (manager) => {
      const skus = body.items.map((item) => item.sku);
      const prices = new Map(
        (
          await manager.query<Array<{ sku: string; unit_price: string }>>(
            `SELECT sku, unit_price FROM products WHERE sku = ANY($1::text[])`,
            [skus],
          )
        ).map((row) => [row.sku, Number(row.unit_price)]),
      );
      const unknown = skus.filter((sku) => !prices.has(sku));
      if (unknown.length) {
        throw new UnprocessableEntityException(unknown.map((sku) => `items: unknown sku ${sku}`));
      }
      const id = randomUUID();
      const total = body.items.reduce((sum, item) => sum + item.quantity * prices.get(item.sku)!, 0);
      // The order and its items in one statement; nothing if the Idempotency-Key was used before.
      const inserted = await manager.query<Array<{ created_at: Date }>>(
        `WITH placed AS (
           INSERT INTO orders (id, customer_id, status, total, currency, idempotency_key, request_hash)
           VALUES ($1, $2, 'PENDING', $3, $4, $5, $6)
           ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, created_at),
         items AS (
           INSERT INTO order_items (order_id, sku, quantity, unit_price)
           SELECT placed.id, line.sku, line.quantity, line.unit_price
             FROM placed, unnest($7::text[], $8::int[], $9::bigint[]) AS line(sku, quantity, unit_price))
         SELECT created_at FROM placed`,
        [
          id,
          body.customerId,
          total,
          this.config.CURRENCY,
          idempotencyKey ?? null,
          requestHash,
          skus,
          body.items.map((item) => item.quantity),
          skus.map((sku) => prices.get(sku)),
        ],
      );
      if (inserted.length === 0) {
        // The key's earlier request (committed before, or concurrently and first): answer with its order.
        return replay((await this.findByKey(manager, idempotencyKey!))!, requestHash);
      }
      await this.coordinator.begin(manager, {
        id,
        timeoutMs: this.config.PREPARE_TIMEOUT_MS,
        requests: {
          inventory: { items: body.items },
          payment: { customerId: body.customerId, amount: total, currency: this.config.CURRENCY },
        },
      });
      const items = body.items
        .map((item) => ({ sku: item.sku, quantity: item.quantity, unit_price: prices.get(item.sku)! }))
        .sort((a, b) => compareCodePoints(a.sku, b.sku)); // as ORDER_SELECT lists them
      const order: OrderRow = {
        id,
        customer_id: body.customerId,
        status: 'PENDING',
        reason: null,
        total: String(total),
        currency: this.config.CURRENCY,
        request_hash: requestHash,
        created_at: inserted[0].created_at,
        decided_at: null,
        items,
      };
      return { order: toView(order), replayed: false };
    });
  }

  async get(id: string): Promise<OrderView> {
    const [row] = await this.database.query<OrderRow[]>(`${ORDER_SELECT} WHERE o.id = $1`, [id]);
    if (!row) throw new NotFoundException(`no order ${id}`);
    return toView(row);
  }

  /**
   * The order once decided, or as it is after `waitMs` (for `Prefer: wait`). It is read again only
   * when woken (its decision announced) and once at the end; with too many waiting, at once.
   */
  async waitForDecision(id: string, waitMs: number): Promise<OrderView> {
    const until = Date.now() + waitMs;
    let order = await this.get(id);
    while (order.status === 'PENDING' && Date.now() < until && this.waits.hasRoom) {
      await this.waits.next(id, until - Date.now());
      order = await this.get(id);
    }
    return order;
  }

  private async findByKey(manager: EntityManager, key: string): Promise<OrderRow | undefined> {
    const [row] = await manager.query<OrderRow[]>(`${ORDER_SELECT} WHERE o.idempotency_key = $1`, [key]);
    return row;
  }
}

function replay(earlier: OrderRow, requestHash: string): PlacedOrder {
  if (earlier.request_hash !== requestHash) {
    throw new UnprocessableEntityException('this Idempotency-Key was already used with a different request');
  }
  return { order: toView(earlier), replayed: true };
}

/**
 * Same customer and same lines (in any order) is the same request: the lines sorted by code point,
 * so every replica hashes one request alike whatever its locale.
 */
export function hashRequest(body: PlaceOrderBody): string {
  const lines = [...body.items].sort((a, b) => compareCodePoints(a.sku, b.sku)).map((i) => [i.sku, i.quantity]);
  return createHash('sha256')
    .update(JSON.stringify([body.customerId, lines]))
    .digest('hex');
}

function toView(row: OrderRow): OrderView {
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

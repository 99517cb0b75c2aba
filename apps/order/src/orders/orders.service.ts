import { createHash, randomUUID } from 'node:crypto';
import { ConflictException, Inject, Injectable, NotFoundException, UnprocessableEntityException } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import { RequestDatabase, Retention, SERVICE_CONFIG } from '@shop/service-kit';
import { compareCodePoints } from '@shop/contracts';
import { Coordinator } from '@shop/two-phase-commit';
import type { OrderConfig } from '../config';
import type { AdmissionTicket } from './admission-control';
import { DecisionWaits } from './decision-waits';
import { type OrderRequest, OrderView } from './order.schemas';
import { prepareRequests } from './prepare-requests';

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

const ORDER_COLUMNS = `
  o.id, o.customer_id, o.status, o.reason, o.total, o.currency, o.request_hash, o.created_at, o.decided_at,
  (SELECT json_agg(json_build_object('sku', i.sku, 'quantity', i.quantity, 'unit_price', i.unit_price) ORDER BY i.sku COLLATE "C")
     FROM order_items i WHERE i.order_id = o.id) AS items`;
const ORDER_SELECT = `SELECT ${ORDER_COLUMNS} FROM orders o`;

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
    private readonly dataSource: DataSource,
    retention: Retention,
  ) {
    retention.register('idempotency keys', () => this.pruneIdempotencyKeys());
  }

  /**
   * Prices the order and, in ONE local transaction, stores it PENDING with its items and begins
   * the two-phase commit (one prepare per participant, through the outbox). A request with an
   * Idempotency-Key this customer used before (within IDEMPOTENCY_KEY_RETENTION_HOURS) gets that
   * key's order (or 422 if the request differs). The new order takes its admission slot
   * (`ticket.accepted`) the moment its transaction commits: from then on it can be decided, even
   * before this request is answered (its shared group may still be running others alone).
   */
  async place(body: OrderRequest, idempotencyKey: string | undefined, ticket: AdmissionTicket): Promise<PlacedOrder> {
    const requestHash = hashRequest(body);
    // Orders placed at the same time share a commit.
    return this.database.sharedTransaction(async (unit) => {
      const { manager } = unit;
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
      // The order and its items in one statement; nothing if the customer used the Idempotency-Key before.
      const insert = () =>
        manager.query<Array<{ created_at: Date }>>(
          `WITH placed AS (
           INSERT INTO orders (id, customer_id, status, total, currency, idempotency_key, request_hash)
           VALUES ($1, $2, 'PENDING', $3, $4, $5, $6)
           ON CONFLICT (customer_id, idempotency_key) DO NOTHING RETURNING id, created_at),
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
      let inserted = await insert();
      if (inserted.length === 0) {
        // The key's earlier request (committed before, or concurrently and first): answer with its
        // order, unless the key is past retention and not pruned yet: then it is free again.
        const earlier = await this.findByKey(manager, body.customerId, idempotencyKey!);
        if (earlier && !earlier.expired) return replay(earlier.order, requestHash);
        if (earlier) {
          await manager.query(`UPDATE orders SET idempotency_key = NULL WHERE id = $1`, [earlier.order.id]);
          inserted = await insert();
        }
        if (inserted.length === 0) {
          throw new ConflictException('this Idempotency-Key is being used by another request just now; retry');
        }
      }
      await this.coordinator.begin(unit, {
        id,
        timeoutMs: this.config.PREPARE_TIMEOUT_MS,
        requests: prepareRequests({ request: body, total, currency: this.config.CURRENCY }),
      });
      const items = body.items
        .map((item) => ({ sku: item.sku, quantity: item.quantity, unit_price: prices.get(item.sku)! }))
        .sort((a, b) => compareCodePoints(a.sku, b.sku)); // as ORDER_SELECT lists them
      unit.afterCommit(() => ticket.accepted(id));
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

  /**
   * What `place` would answer a replay of this request (the key's order, or 422 if the request
   * differs), or undefined when the key has no order (or is past retention): a read only, for a
   * request refused at the door (429) that may be a replay, which writes nothing and is answered.
   */
  async findReplay(body: OrderRequest, idempotencyKey: string): Promise<PlacedOrder | undefined> {
    const earlier = await this.database.read((manager) => this.findByKey(manager, body.customerId, idempotencyKey));
    return earlier && !earlier.expired ? replay(earlier.order, hashRequest(body)) : undefined;
  }

  /** The customer's order: someone else's is answered exactly like one that does not exist. */
  async get(id: string, customerId: string): Promise<OrderView> {
    const [row] = await this.database.query<OrderRow[]>(`${ORDER_SELECT} WHERE o.id = $1 AND o.customer_id = $2`, [
      id,
      customerId,
    ]);
    if (!row) throw new NotFoundException(`no order ${id}`);
    return toView(row);
  }

  /**
   * The order once decided, or as it is after `waitMs` (for `Prefer: wait`). It is read again only
   * when woken (its decision announced) and once at the end; with too many waiting, at once.
   * Each read comes after the wake-up it waits for is registered: a decision announced while the
   * order is being read still wakes it.
   */
  async waitForDecision(id: string, customerId: string, waitMs: number): Promise<OrderView> {
    const until = performance.now() + waitMs;
    const done = new AbortController();
    let timeUp = false;
    try {
      for (;;) {
        const left = until - performance.now();
        const woken: Promise<boolean> | undefined =
          !timeUp && left > 0 && this.waits.hasRoom ? this.waits.next(id, left, done.signal) : undefined;
        const order = await this.get(id, customerId);
        if (order.status !== 'PENDING' || !woken) return order;
        timeUp = !(await woken);
      }
    } finally {
      done.abort(); // the wake-up registered before the last read, if it is still waiting
    }
  }

  /**
   * Forgets Idempotency-Keys past retention (at most 10,000 a round; see `Retention`), so the
   * index stays small; `place` already treats such a key as free when it meets one first.
   */
  async pruneIdempotencyKeys(): Promise<number> {
    const [, forgotten] = await this.dataSource.query<[unknown, number]>(
      `UPDATE orders SET idempotency_key = NULL WHERE id IN (
         SELECT id FROM orders
          WHERE idempotency_key IS NOT NULL AND created_at < now() - make_interval(secs => $1)
          LIMIT 10000)`,
      [this.retentionSeconds],
    );
    return forgotten ?? 0;
  }

  private get retentionSeconds(): number {
    return this.config.IDEMPOTENCY_KEY_RETENTION_HOURS * 3600;
  }

  /** The customer's order with this key, and whether the key is past retention (by the database's clock). */
  private async findByKey(
    manager: EntityManager,
    customerId: string,
    key: string,
  ): Promise<{ order: OrderRow; expired: boolean } | undefined> {
    const [row] = await manager.query<Array<OrderRow & { expired: boolean }>>(
      `SELECT ${ORDER_COLUMNS}, o.created_at < now() - make_interval(secs => $3) AS expired
         FROM orders o WHERE o.customer_id = $1 AND o.idempotency_key = $2`,
      [customerId, key, this.retentionSeconds],
    );
    return row && { order: row, expired: row.expired };
  }
}

function replay(earlier: OrderRow, requestHash: string): PlacedOrder {
  if (earlier.request_hash !== requestHash) {
    throw new UnprocessableEntityException('this Idempotency-Key was already used with a different request');
  }
  return { order: toView(earlier), replayed: true };
}

/**
 * Same customer, same lines (in any order) and the same other fields is the same request: the
 * lines sorted by code point, so every replica hashes one request alike whatever its locale. Every
 * field of the body counts, so one added to PlaceOrderBody (what a new participant is asked, say)
 * cannot be changed under a reused key unseen; a body of only customer and lines hashes as it did
 * before any other field existed, so the keys already stored stay valid.
 */
export function hashRequest(body: OrderRequest): string {
  const { customerId, items, ...others } = body;
  const lines = [...items].sort((a, b) => compareCodePoints(a.sku, b.sku)).map((i) => [i.sku, i.quantity]);
  const fields = Object.entries(others as Record<string, unknown>)
    .filter(([, value]) => value !== undefined)
    .sort(([a], [b]) => compareCodePoints(a, b));
  return createHash('sha256')
    .update(JSON.stringify(fields.length ? [customerId, lines, fields] : [customerId, lines]))
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

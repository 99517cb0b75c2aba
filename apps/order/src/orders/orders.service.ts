import { createHash, randomUUID } from 'node:crypto';
import {
  ConflictException,
  HttpException,
  Inject,
  Injectable,
  NotFoundException,
  UnprocessableEntityException,
} from '@nestjs/common';
import { DataSource } from 'typeorm';
import { RequestDatabase, Retention, SERVICE_CONFIG } from '@shop/service-kit';
import { compareCodePoints, type TraceContext } from '@shop/contracts';
import { currentTraceContext } from '@shop/messaging';
import type { UnitOfWork } from '@shop/outbox';
import { Coordinator, type NewTransaction } from '@shop/two-phase-commit';
import type { OrderConfig } from '../config';
import type { AdmissionTicket } from './admission-control';
import { DecisionWaits } from './decision-waits';
import { ORDER_SELECT, type NewOrder, type OrderRow, findByKey, insertOrders, pricesOf, toView } from './order-rows';
import { type OrderRequest, OrderView } from './order.schemas';
import { prepareRequests } from './prepare-requests';

export interface PlacedOrder {
  order: OrderView;
  /** True when an Idempotency-Key matched an earlier identical request. */
  replayed: boolean;
}

@Injectable()
export class OrdersService {
  private readonly placing: { run(placing: Placing): Promise<Placement> };

  constructor(
    private readonly database: RequestDatabase,
    private readonly coordinator: Coordinator,
    private readonly waits: DecisionWaits,
    @Inject(SERVICE_CONFIG) private readonly config: OrderConfig,
    private readonly dataSource: DataSource,
    retention: Retention,
  ) {
    retention.register('idempotency keys', () => this.pruneIdempotencyKeys());
    this.placing = database.groupCommit<Placing, Placement>((unit) => this.placeAll(unit));
  }

  /**
   * Prices the order and, in ONE local transaction, stores it PENDING with its items and begins
   * the two-phase commit (one prepare per participant, through the outbox). A request with an
   * Idempotency-Key this customer used before (within IDEMPOTENCY_KEY_RETENTION_HOURS) gets that
   * key's order (or 422 if the request differs). Orders placed at the same time share the
   * transaction and are written together (`placeAll`). The new order takes its admission slot
   * (`ticket.accepted`) the moment its transaction commits: from then on it can be decided, even
   * before this request is answered.
   */
  async place(
    request: OrderRequest,
    idempotencyKey: string | undefined,
    ticket: AdmissionTicket,
  ): Promise<PlacedOrder> {
    const placement = await this.placing.run({
      request,
      idempotencyKey,
      requestHash: hashRequest(request),
      ticket,
      traceContext: currentTraceContext(), // the group is written in another request's context
    });
    if ('refused' in placement) throw placement.refused;
    return placement;
  }

  /**
   * Writes a group of new orders set-based, a statement for them all (prices, orders and lines,
   * checkouts with their prepares), then answers each in its step. Refusals write nothing and are
   * answers, not failures: they do not make the group run again.
   */
  private async placeAll(unit: UnitOfWork<Placing>): Promise<void> {
    const { manager, items: placings } = unit;
    const prices = await pricesOf(
      manager,
      placings.flatMap((placing) => placing.request.items.map((item) => item.sku)),
    );
    const orders = new Map<Placing, NewOrder>();
    for (const placing of placings) {
      if (placing.request.items.every((item) => prices.has(item.sku))) orders.set(placing, newOrder(placing, prices));
    }
    const written = await insertOrders(manager, [...orders.values()], this.config.CURRENCY);
    const begun = [...orders].filter(([, order]) => written.has(order.id));
    await this.coordinator.beginAll(
      unit,
      begun.map(([placing, order]) => this.newCheckout(placing, order)),
    );
    for (const placing of placings) {
      await unit.step(placing, async (): Promise<Placement> => {
        const order = orders.get(placing);
        if (!order) return { refused: unknownSkus(placing.request, prices) };
        const createdAt = written.get(order.id);
        if (createdAt) return this.placed(unit, placing, order, createdAt);
        return this.placeAgainstKey(unit, placing, order);
      });
    }
  }

  /**
   * An order whose customer used its Idempotency-Key before (committed before, or earlier in this
   * group): that key's order, unless the key is past retention and not pruned yet: then it is
   * free again, and the order is written alone.
   */
  private async placeAgainstKey(unit: UnitOfWork<Placing>, placing: Placing, order: NewOrder): Promise<Placement> {
    const { request, idempotencyKey, requestHash } = placing;
    const earlier = await findByKey(unit.manager, request.customerId, idempotencyKey!, this.retentionSeconds);
    if (earlier && !earlier.expired) return replayOrRefusal(earlier.order, requestHash);
    if (earlier) {
      await unit.manager.query(`UPDATE orders SET idempotency_key = NULL WHERE id = $1`, [earlier.order.id]);
      const createdAt = (await insertOrders(unit.manager, [order], this.config.CURRENCY)).get(order.id);
      if (createdAt) {
        await this.coordinator.begin(unit, this.newCheckout(placing, order));
        return this.placed(unit, placing, order, createdAt);
      }
    }
    return { refused: new ConflictException('this Idempotency-Key is being used by another request just now; retry') };
  }

  private newCheckout(placing: Placing, order: NewOrder): NewTransaction {
    const priced = { request: placing.request, total: order.total, currency: this.config.CURRENCY };
    return {
      id: order.id,
      timeoutMs: this.config.PREPARE_TIMEOUT_MS,
      requests: prepareRequests(priced),
      traceContext: placing.traceContext,
    };
  }

  private placed(unit: UnitOfWork<Placing>, placing: Placing, order: NewOrder, createdAt: Date): PlacedOrder {
    unit.afterCommit(() => placing.ticket.accepted(order.id));
    const row: OrderRow = {
      id: order.id,
      customer_id: order.customerId,
      status: 'PENDING',
      reason: null,
      total: String(order.total),
      currency: this.config.CURRENCY,
      request_hash: order.requestHash,
      created_at: createdAt,
      decided_at: null,
      items: [...order.items].sort((a, b) => compareCodePoints(a.sku, b.sku)), // as ORDER_SELECT lists them
    };
    return { order: toView(row), replayed: false };
  }

  /**
   * What `place` would answer a replay of this request (the key's order, or 422 if the request
   * differs), or undefined when the key has no order (or is past retention): a read only, for a
   * request refused at the door (429) that may be a replay, which writes nothing and is answered.
   */
  async findReplay(body: OrderRequest, idempotencyKey: string): Promise<PlacedOrder | undefined> {
    const earlier = await this.database.read((manager) =>
      findByKey(manager, body.customerId, idempotencyKey, this.retentionSeconds),
    );
    if (!earlier || earlier.expired) return undefined;
    const placement = replayOrRefusal(earlier.order, hashRequest(body));
    if ('refused' in placement) throw placement.refused;
    return placement;
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
}

/** A new order being placed: what its request asked, and what it carries into the shared write. */
interface Placing {
  request: OrderRequest;
  idempotencyKey: string | undefined;
  requestHash: string;
  ticket: AdmissionTicket;
  traceContext: TraceContext;
}

/** What a placing comes to: the order, or a refusal (written nothing: 422, 409). */
type Placement = PlacedOrder | { refused: HttpException };

function newOrder(placing: Placing, prices: ReadonlyMap<string, number>): NewOrder {
  const items = placing.request.items.map((item) => ({ ...item, unit_price: prices.get(item.sku)! }));
  return {
    id: randomUUID(),
    customerId: placing.request.customerId,
    total: items.reduce((sum, item) => sum + item.quantity * item.unit_price, 0),
    idempotencyKey: placing.idempotencyKey ?? null,
    requestHash: placing.requestHash,
    items,
  };
}

function unknownSkus(request: OrderRequest, prices: ReadonlyMap<string, number>): HttpException {
  const unknown = request.items.map((item) => item.sku).filter((sku) => !prices.has(sku));
  return new UnprocessableEntityException(unknown.map((sku) => `items: unknown sku ${sku}`));
}

function replayOrRefusal(earlier: OrderRow, requestHash: string): Placement {
  if (earlier.request_hash !== requestHash) {
    return {
      refused: new UnprocessableEntityException('this Idempotency-Key was already used with a different request'),
    };
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

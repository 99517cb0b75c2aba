import type { PoolClient } from 'pg';
import { PARTICIPANTS } from '@shop/contracts';
import { snapshot, sql } from './db';
import { eventually } from './eventually';

/**
 * THE invariant checker of the design brief, read straight from the three services' schemas
 * (order_svc, inventory_svc, payment_svc) in ONE repeatable-read snapshot, so that it sees every
 * service's committed state at the same instant (with a server per service: one per server, the
 * participants' taken first, see `checkInvariants`).
 *
 * Safety (must hold at every instant, under load and faults):
 *   - stock: per SKU, available + reserved + sold = stocked; nothing negative;
 *     sold = Σ reservations of COMMITTED inventory transactions; reserved = Σ of PREPARED ones.
 *   - money: per account, balance + held + captured = deposited; nothing negative;
 *     captured = Σ holds of COMMITTED payment transactions; held = Σ of PREPARED ones.
 *   - atomicity: CONFIRMED ⇒ no participant refused or aborted (and, at rest, both COMMITTED);
 *     CANCELLED (or PENDING) ⇒ neither COMMITTED; the coordinator's state agrees with the order's
 *     status; no participant has committed a transaction whose order is not CONFIRMED.
 *   - the order is priced as its lines say; what was reserved/held is what the order asked for.
 * Liveness (once faults stop, `waitUntilQuiescent`): no PENDING order, nothing reserved or held,
 * no PREPARED participant transaction, every decision acknowledged (completed_at set).
 */

/** What to check. Nothing given = everything in the database. */
export interface Scope {
  orderIds?: readonly string[];
  skus?: readonly string[];
  customerIds?: readonly string[];
}

export interface Violation {
  kind: 'safety' | 'liveness';
  message: string;
}

export interface CheckOptions {
  /** Also check liveness (quiescence): nothing pending, reserved, held, prepared or unacked. */
  quiescent?: boolean;
}

interface ResolvedScope {
  all: boolean;
  orderIds: string[];
  skus: string[];
  customerIds: string[];
}

type Num = string | number;
const big = (value: Num | null | undefined): bigint => BigInt(value ?? 0);
/** For messages: a nullable column as text. */
const txt = (value: string | number | null | undefined): string =>
  value === null || value === undefined ? 'none' : String(value);

interface StockRow {
  sku: string;
  available: Num;
  reserved: Num;
  sold: Num;
  stocked: Num;
  committed: Num;
  prepared: Num;
}

interface AccountRow {
  customer_id: string;
  balance: Num;
  held: Num;
  captured: Num;
  deposited: Num;
  committed: Num;
  prepared: Num;
}

interface OrderRow {
  id: string;
  status: string;
  reason: string | null;
  total: Num;
  customer_id: string;
  coordinator_state: string | null;
  completed_at: Date | null;
  inventory_state: string | null;
  payment_state: string | null;
  items_total: Num;
  lines: number;
  items: unknown;
  reservations: unknown;
  holds: Array<{ customerId: string; amount: string }>;
}

interface TouchedRow {
  participant: string;
  transaction_id: string;
  state: string;
  status: string | null;
}

function isEmptyScope(scope: Scope | undefined): boolean {
  return !scope || (scope.orderIds === undefined && scope.skus === undefined && scope.customerIds === undefined);
}

/**
 * Orders = the given ids ∪ orders touching the given SKUs or customers; SKUs and customers =
 * the given ones ∪ those of the scoped orders.
 */
async function resolveScope(client: PoolClient, scope: Scope | undefined): Promise<ResolvedScope> {
  const one = async (text: string, params: unknown[] = []) =>
    (await client.query<{ v: string }>(text, params)).rows.map((r) => r.v);
  if (isEmptyScope(scope)) {
    return {
      all: true,
      orderIds: await one(`SELECT id::text AS v FROM order_svc.orders`),
      skus: await one(`SELECT sku AS v FROM inventory_svc.stock`),
      customerIds: await one(`SELECT customer_id AS v FROM payment_svc.accounts`),
    };
  }
  const givenSkus = [...(scope?.skus ?? [])];
  const givenCustomers = [...(scope?.customerIds ?? [])];
  const orderIds = await one(
    `SELECT o.id::text AS v FROM order_svc.orders o
      WHERE o.id::text = ANY($1::text[])
         OR o.customer_id = ANY($2::text[])
         OR EXISTS (SELECT 1 FROM order_svc.order_items i WHERE i.order_id = o.id AND i.sku = ANY($3::text[]))`,
    [scope?.orderIds ?? [], givenCustomers, givenSkus],
  );
  // Ids that are not orders (yet) still count: a participant may know a transaction the coordinator does not.
  const allOrderIds = [...new Set([...orderIds, ...(scope?.orderIds ?? [])])];
  const skus = await one(`SELECT DISTINCT sku AS v FROM order_svc.order_items WHERE order_id::text = ANY($1::text[])`, [
    allOrderIds,
  ]);
  const customers = await one(
    `SELECT DISTINCT customer_id AS v FROM order_svc.orders WHERE id::text = ANY($1::text[])`,
    [allOrderIds],
  );
  return {
    all: false,
    orderIds: allOrderIds,
    skus: [...new Set([...givenSkus, ...skus])],
    customerIds: [...new Set([...givenCustomers, ...customers])],
  };
}

async function checkStock(client: PoolClient, scope: ResolvedScope, options: CheckOptions): Promise<Violation[]> {
  const { rows } = await client.query<StockRow>(
    `SELECT s.sku, s.available, s.reserved, s.sold, s.stocked,
            COALESCE((SELECT sum(r.quantity) FROM inventory_svc.reservations r
                        JOIN inventory_svc.tpc_participant_transactions t ON t.transaction_id = r.transaction_id
                       WHERE r.sku = s.sku AND t.state = 'COMMITTED'), 0) AS committed,
            COALESCE((SELECT sum(r.quantity) FROM inventory_svc.reservations r
                        JOIN inventory_svc.tpc_participant_transactions t ON t.transaction_id = r.transaction_id
                       WHERE r.sku = s.sku AND t.state = 'PREPARED'), 0) AS prepared
       FROM inventory_svc.stock s WHERE s.sku = ANY($1::text[]) ORDER BY s.sku`,
    [scope.skus],
  );
  const out: Violation[] = [];
  for (const r of rows) {
    const [available, reserved, sold, stocked] = [r.available, r.reserved, r.sold, r.stocked].map(big);
    const figures = `available=${available} reserved=${reserved} sold=${sold} stocked=${stocked}`;
    if (available < 0n || reserved < 0n || sold < 0n) {
      out.push({ kind: 'safety', message: `stock ${r.sku}: a negative figure (${figures})` });
    }
    if (available + reserved + sold !== stocked) {
      out.push({
        kind: 'safety',
        message: `stock ${r.sku}: available+reserved+sold = ${available + reserved + sold} ≠ stocked ${stocked} (${figures})`,
      });
    }
    if (sold !== big(r.committed)) {
      out.push({
        kind: 'safety',
        message: `stock ${r.sku}: sold ${sold} ≠ ${big(r.committed)} reserved by COMMITTED inventory transactions`,
      });
    }
    if (reserved !== big(r.prepared)) {
      out.push({
        kind: 'safety',
        message: `stock ${r.sku}: reserved ${reserved} ≠ ${big(r.prepared)} reserved by PREPARED inventory transactions`,
      });
    }
    if (options.quiescent && reserved !== 0n) {
      out.push({ kind: 'liveness', message: `stock ${r.sku}: ${reserved} still reserved` });
    }
  }
  return out;
}

async function checkMoney(client: PoolClient, scope: ResolvedScope, options: CheckOptions): Promise<Violation[]> {
  const { rows } = await client.query<AccountRow>(
    `SELECT a.customer_id, a.balance, a.held, a.captured, a.deposited,
            COALESCE((SELECT sum(h.amount) FROM payment_svc.holds h
                        JOIN payment_svc.tpc_participant_transactions t ON t.transaction_id = h.transaction_id
                       WHERE h.customer_id = a.customer_id AND t.state = 'COMMITTED'), 0) AS committed,
            COALESCE((SELECT sum(h.amount) FROM payment_svc.holds h
                        JOIN payment_svc.tpc_participant_transactions t ON t.transaction_id = h.transaction_id
                       WHERE h.customer_id = a.customer_id AND t.state = 'PREPARED'), 0) AS prepared
       FROM payment_svc.accounts a WHERE a.customer_id = ANY($1::text[]) ORDER BY a.customer_id`,
    [scope.customerIds],
  );
  const out: Violation[] = [];
  for (const r of rows) {
    const [balance, held, captured, deposited] = [r.balance, r.held, r.captured, r.deposited].map(big);
    const figures = `balance=${balance} held=${held} captured=${captured} deposited=${deposited}`;
    if (balance < 0n || held < 0n || captured < 0n) {
      out.push({ kind: 'safety', message: `account ${r.customer_id}: a negative figure (${figures})` });
    }
    if (balance + held + captured !== deposited) {
      out.push({
        kind: 'safety',
        message: `account ${r.customer_id}: balance+held+captured = ${balance + held + captured} ≠ deposited ${deposited} (${figures})`,
      });
    }
    if (captured !== big(r.committed)) {
      out.push({
        kind: 'safety',
        message: `account ${r.customer_id}: captured ${captured} ≠ ${big(r.committed)} held by COMMITTED payment transactions`,
      });
    }
    if (held !== big(r.prepared)) {
      out.push({
        kind: 'safety',
        message: `account ${r.customer_id}: held ${held} ≠ ${big(r.prepared)} held by PREPARED payment transactions`,
      });
    }
    if (options.quiescent && held !== 0n) {
      out.push({ kind: 'liveness', message: `account ${r.customer_id}: ${held} still held` });
    }
  }
  return out;
}

const EXPECTED_COORDINATOR_STATE: Record<string, string> = {
  PENDING: 'PREPARING',
  CONFIRMED: 'COMMITTED',
  CANCELLED: 'ABORTED',
};

async function checkOrders(client: PoolClient, scope: ResolvedScope, options: CheckOptions): Promise<Violation[]> {
  const { rows } = await client.query<OrderRow>(
    `SELECT o.id::text AS id, o.status, o.reason, o.total, o.customer_id,
            t.state AS coordinator_state, t.completed_at,
            i.state AS inventory_state, p.state AS payment_state,
            (SELECT COALESCE(sum(quantity::bigint * unit_price::bigint), 0) FROM order_svc.order_items
              WHERE order_id = o.id) AS items_total,
            (SELECT count(*) FROM order_svc.order_items WHERE order_id = o.id)::int AS lines,
            (SELECT COALESCE(json_agg(json_build_object('sku', sku, 'quantity', quantity) ORDER BY sku), '[]')
               FROM order_svc.order_items WHERE order_id = o.id) AS items,
            (SELECT COALESCE(json_agg(json_build_object('sku', sku, 'quantity', quantity) ORDER BY sku), '[]')
               FROM inventory_svc.reservations WHERE transaction_id = o.id) AS reservations,
            (SELECT COALESCE(json_agg(json_build_object('customerId', customer_id, 'amount', amount::text)), '[]')
               FROM payment_svc.holds WHERE transaction_id = o.id) AS holds
       FROM order_svc.orders o
       LEFT JOIN order_svc.tpc_transactions t ON t.id = o.id
       LEFT JOIN inventory_svc.tpc_participant_transactions i ON i.transaction_id = o.id
       LEFT JOIN payment_svc.tpc_participant_transactions p ON p.transaction_id = o.id
      WHERE o.id::text = ANY($1::text[])
      ORDER BY o.created_at`,
    [scope.orderIds],
  );
  const out: Violation[] = [];
  const safety = (message: string) => out.push({ kind: 'safety', message });
  for (const r of rows) {
    const id = `order ${r.id}`;
    const committed = [r.inventory_state, r.payment_state].filter((s) => s === 'COMMITTED').length;
    const states = `(order ${r.status}, coordinator ${txt(r.coordinator_state)}, inventory ${txt(r.inventory_state)}, payment ${txt(r.payment_state)})`;
    // While the decision travels a participant may still be PREPARED; one that refused or aborted never may.
    const refused = [r.inventory_state, r.payment_state].some((s) => s === 'REFUSED' || s === 'ABORTED');
    if (r.status === 'CONFIRMED' && refused)
      safety(`${id}: CONFIRMED but refused or aborted by a participant ${states}`);
    if (r.status === 'CONFIRMED' && options.quiescent && committed !== 2)
      safety(`${id}: CONFIRMED but not committed by both ${states}`);
    if (r.status !== 'CONFIRMED' && committed > 0)
      safety(`${id}: ${r.status} but committed by a participant ${states}`);
    if (!['PENDING', 'CONFIRMED', 'CANCELLED'].includes(r.status)) safety(`${id}: unknown status ${states}`);
    if (r.coordinator_state !== EXPECTED_COORDINATOR_STATE[r.status]) {
      safety(`${id}: status and coordinator state disagree ${states}`);
    }
    if (r.status === 'CANCELLED' && !r.reason) safety(`${id}: CANCELLED without a reason`);
    if (r.lines === 0) safety(`${id}: has no items`);
    if (big(r.total) !== big(r.items_total)) safety(`${id}: total ${r.total} ≠ Σ lines ${r.items_total}`);
    const items = JSON.stringify(r.items);
    if (['PREPARED', 'COMMITTED'].includes(txt(r.inventory_state)) && JSON.stringify(r.reservations) !== items) {
      safety(`${id}: inventory reserved ${JSON.stringify(r.reservations)} but the order has ${items}`);
    }
    const holds = r.holds;
    if (['PREPARED', 'COMMITTED'].includes(txt(r.payment_state))) {
      const ok = holds.length === 1 && holds[0].customerId === r.customer_id && big(holds[0].amount) === big(r.total);
      if (!ok) safety(`${id}: payment holds ${JSON.stringify(holds)} but the order is ${r.total} for ${r.customer_id}`);
    }
    if (options.quiescent) {
      const liveness = (message: string) => out.push({ kind: 'liveness', message });
      if (r.status === 'PENDING') liveness(`${id}: still PENDING ${states}`);
      if (r.inventory_state === 'PREPARED' || r.payment_state === 'PREPARED')
        liveness(`${id}: still PREPARED ${states}`);
      if (r.status !== 'PENDING' && !r.completed_at) liveness(`${id}: decided but not acknowledged by all ${states}`);
    }
  }
  return out;
}

/** Participant transactions committed (or held prepared) in scope whose order does not say so. */
async function checkParticipantsAgainstOrders(
  client: PoolClient,
  scope: ResolvedScope,
  options: CheckOptions,
): Promise<Violation[]> {
  const { rows } = await client.query<TouchedRow>(
    `WITH touched AS (
       SELECT 'inventory' AS participant, t.transaction_id, t.state
         FROM inventory_svc.tpc_participant_transactions t
        WHERE $4::boolean OR t.transaction_id::text = ANY($1::text[])
           OR EXISTS (SELECT 1 FROM inventory_svc.reservations r
                       WHERE r.transaction_id = t.transaction_id AND r.sku = ANY($2::text[]))
       UNION ALL
       SELECT 'payment', t.transaction_id, t.state
         FROM payment_svc.tpc_participant_transactions t
        WHERE $4::boolean OR t.transaction_id::text = ANY($1::text[])
           OR EXISTS (SELECT 1 FROM payment_svc.holds h
                       WHERE h.transaction_id = t.transaction_id AND h.customer_id = ANY($3::text[])))
     SELECT touched.participant, touched.transaction_id::text AS transaction_id, touched.state, o.status
       FROM touched LEFT JOIN order_svc.orders o ON o.id = touched.transaction_id
      WHERE touched.state IN ('COMMITTED', 'PREPARED')`,
    [scope.orderIds, scope.skus, scope.customerIds, scope.all],
  );
  const out: Violation[] = [];
  for (const r of rows) {
    const what = `${r.participant} transaction ${r.transaction_id}`;
    if (r.state === 'COMMITTED' && r.status !== 'CONFIRMED') {
      out.push({ kind: 'safety', message: `${what}: COMMITTED but the order is ${r.status ?? 'unknown'}` });
    }
    // PREPARED is legal while the decision is on its way, never once quiescent.
    if (r.state === 'PREPARED' && options.quiescent) {
      const order = r.status === null ? 'an order the coordinator does not know' : `order ${r.status}`;
      out.push({ kind: 'liveness', message: `${what}: still PREPARED (${order})` });
    }
  }
  return out;
}

/** Every violation in scope (an empty list when all invariants hold). */
export async function checkInvariants(scope?: Scope, options: CheckOptions = {}): Promise<Violation[]> {
  return snapshot(async (client) => {
    // With a database server per service (schemas federated through postgres_fdw) each server's
    // snapshot is taken at its first read: the participants' first, so that no participant is
    // seen further on than the coordinator's decision. On one server this is the same snapshot.
    for (const participant of PARTICIPANTS)
      await client.query(`SELECT 1 FROM ${participant}_svc.tpc_participant_transactions LIMIT 1`);
    return checkInvariantsIn(client, scope, options);
  });
}

/**
 * The same checks on a connection the caller controls (already inside a transaction, e.g. to
 * check rows it has not committed). Use a REPEATABLE READ transaction for a consistent view.
 */
export async function checkInvariantsIn(
  client: PoolClient,
  scope?: Scope,
  options: CheckOptions = {},
): Promise<Violation[]> {
  const resolved = await resolveScope(client, scope);
  return [
    ...(await checkStock(client, resolved, options)),
    ...(await checkMoney(client, resolved, options)),
    ...(await checkOrders(client, resolved, options)),
    ...(await checkParticipantsAgainstOrders(client, resolved, options)),
  ];
}

export function formatViolations(violations: readonly Violation[], max = 50): string {
  const lines = violations.slice(0, max).map((v) => `  [${v.kind}] ${v.message}`);
  if (violations.length > max) lines.push(`  … and ${violations.length - max} more`);
  return lines.join('\n');
}

/** Fails the test listing every violated invariant. `quiescent` adds the liveness checks. */
export async function expectInvariants(scope?: Scope, options: CheckOptions = {}): Promise<void> {
  const violations = await checkInvariants(scope, options);
  if (violations.length > 0) {
    throw new Error(`${violations.length} invariant violation(s):\n${formatViolations(violations)}`);
  }
}

export interface DecidedOrder {
  id: string;
  status: 'CONFIRMED' | 'CANCELLED';
  reason: string | null;
  decidedAt: Date | null;
}

/** Polls the order table until every order is CONFIRMED or CANCELLED; returns them by id. */
export async function waitUntilDecided(
  orderIds: readonly string[],
  timeoutMs = 30_000,
): Promise<Map<string, DecidedOrder>> {
  const ids = [...new Set(orderIds)];
  const rows = await eventually(
    async () => {
      const found = await sql<{ id: string; status: string; reason: string | null; decided_at: Date | null }>(
        `SELECT id::text AS id, status, reason, decided_at FROM order_svc.orders WHERE id::text = ANY($1::text[])`,
        [ids],
      );
      const pending = ids.length - found.filter((r) => r.status !== 'PENDING').length;
      if (pending === 0) return found;
      throw new Error(`${pending} of ${ids.length} order(s) not decided (found ${found.length} row(s))`);
    },
    { timeoutMs, intervalMs: 100, what: `${ids.length} order(s) to be decided` },
  );
  return new Map(
    rows.map((r) => [
      r.id,
      { id: r.id, status: r.status as DecidedOrder['status'], reason: r.reason, decidedAt: r.decided_at },
    ]),
  );
}

/**
 * Polls until the scope is quiescent: everything decided and acknowledged, nothing reserved,
 * held or prepared. Fails (listing what is still outstanding) after the timeout. Safety is not
 * waited for: call `expectInvariants` afterwards.
 */
export async function waitUntilQuiescent(scope: Scope, timeoutMs = 30_000): Promise<void> {
  if (isEmptyScope(scope)) throw new Error('waitUntilQuiescent needs a scope (other suites share the database)');
  await eventually(
    async () => {
      const outstanding = (await checkInvariants(scope, { quiescent: true })).filter((v) => v.kind === 'liveness');
      if (outstanding.length === 0) return true;
      throw new Error(`not quiescent:\n${formatViolations(outstanding, 10)}`);
    },
    { timeoutMs, intervalMs: 200, what: 'quiescence' },
  );
}

import type { PoolClient } from 'pg';
import { COORDINATOR, PARTICIPANTS } from '@shop/contracts';
import { findViolations, schemaOf } from '../../scripts/lib/checkout-invariants.mjs';
import { snapshot, sql } from './db';
import { eventually } from './eventually';

/**
 * THE invariant checker of the design brief, read straight from the services' schemas in ONE
 * repeatable-read snapshot, so that it sees every service's committed state at the same instant
 * (with a server per service: one per server, the participants' taken first, see
 * `checkInvariants`). The checks themselves are shared with the benchmark
 * (scripts/lib/checkout-invariants.mjs) and iterate over every participant:
 *
 *   - generic, from the two-phase-commit kit's tables of the coordinator and of each participant:
 *     the coordinator COMMITTED ⇒ no participant refused or aborted (and, at rest, all
 *     COMMITTED); a participant COMMITTED ⇒ the coordinator COMMITTED;
 *   - each service's own, in `apps/<service>/checks/violations.sql`: the order's status agrees
 *     with the decision and it is priced as its lines say; stock and money are conserved and
 *     match the COMMITTED and PREPARED transactions; what was reserved/held is what the order
 *     asked for. A participant without such a file gets the generic checks only.
 *
 * Liveness (once faults stop, `waitUntilQuiescent`): no PENDING order, nothing reserved or held,
 * no PREPARED participant transaction, every decision acknowledged (completed_at set).
 */

/**
 * What to check: orders by id, by customer, or by an item's SKU (nothing given = everything in
 * the database). Each service's checks then cover the resources those orders touched (the SKUs
 * they reserved, the accounts they hold money of), and every other transaction on them.
 */
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
  /** The participants to check (default: every one the contracts declare). */
  participants?: readonly string[];
}

function isEmptyScope(scope: Scope | undefined): boolean {
  return !scope || (scope.orderIds === undefined && scope.skus === undefined && scope.customerIds === undefined);
}

/** The transaction ids in scope: the given ids ∪ orders of the given customers or SKUs; null = all. */
async function transactionsIn(client: PoolClient, scope: Scope | undefined): Promise<string[] | null> {
  if (isEmptyScope(scope)) return null;
  const { rows } = await client.query<{ id: string }>(
    `SELECT o.id::text AS id FROM order_svc.orders o
      WHERE o.customer_id = ANY($1::text[])
         OR EXISTS (SELECT 1 FROM order_svc.order_items i WHERE i.order_id = o.id AND i.sku = ANY($2::text[]))`,
    [scope?.customerIds ?? [], scope?.skus ?? []],
  );
  // Ids that are not orders (yet) still count: a participant may know a transaction the coordinator does not.
  return [...new Set([...(scope?.orderIds ?? []), ...rows.map((r) => r.id)])];
}

/** Every violation in scope (an empty list when all invariants hold). */
export async function checkInvariants(scope?: Scope, options: CheckOptions = {}): Promise<Violation[]> {
  return snapshot(async (client) => {
    // With a database server per service (schemas federated through postgres_fdw) each server's
    // snapshot is taken at its first read: the participants' first, so that no participant is
    // seen further on than the coordinator's decision. On one server this is the same snapshot.
    for (const participant of options.participants ?? PARTICIPANTS)
      await client.query(`SELECT 1 FROM ${schemaOf(participant)}.tpc_participant_transactions LIMIT 1`);
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
  const found = await findViolations(client, {
    coordinator: COORDINATOR,
    participants: options.participants ?? PARTICIPANTS,
    transactionIds: await transactionsIn(client, scope),
    quiescent: options.quiescent ?? false,
  });
  return found.map(({ kind, message }) => ({ kind, message }));
}

/** Every participant's protocol state of one transaction (the kit's table), by participant name; none: no row. */
export async function participantStates(transactionId: string): Promise<Array<{ p: string; state: string }>> {
  return sql<{ p: string; state: string }>(
    PARTICIPANTS.map(
      (p) => `SELECT '${p}' AS p, state FROM ${schemaOf(p)}.tpc_participant_transactions WHERE transaction_id = $1`,
    ).join(' UNION ALL ') + ' ORDER BY p',
    [transactionId],
  );
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

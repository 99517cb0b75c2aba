import type { Queryable } from '@shop/service-kit';

/** One checkout as the console lists it (and streams it: the `checkout` event). */
export interface CheckoutRow {
  id: string;
  customerId: string;
  status: 'PENDING' | 'CONFIRMED' | 'CANCELLED';
  reason: string | null;
  total: string;
  currency: string;
  createdAt: string;
  decidedAt: string | null;
}

export interface CheckoutFilter {
  status?: string;
  reason?: string;
  /** Created at most this long ago. */
  ageSeconds?: number;
  /** An order id or a customer id. */
  q?: string;
}

/** How many checkouts a table shows. */
export const TABLE_ROWS = 50;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const COLUMNS = `o.id, o.customer_id AS "customerId", o.status, o.reason, o.total::text AS total, o.currency,
  to_char(o.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS "createdAt",
  to_char(o.decided_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS "decidedAt"`;

/** The latest checkouts that match `filter`, newest first (a page's read, never a stream's). */
export function latestCheckouts(db: Queryable, filter: CheckoutFilter = {}): Promise<CheckoutRow[]> {
  const q = filter.q?.trim() || null;
  return db.query<CheckoutRow[]>(
    `SELECT ${COLUMNS} FROM orders o
      WHERE ($1::text IS NULL OR o.status = $1) AND ($2::text IS NULL OR o.reason = $2)
        AND ($3::float8 IS NULL OR o.created_at >= now() - make_interval(secs => $3))
        AND ($4::uuid IS NULL OR o.id = $4) AND ($5::text IS NULL OR o.customer_id = $5)
      ORDER BY o.created_at DESC LIMIT ${TABLE_ROWS}`,
    [
      filter.status || null,
      filter.reason || null,
      filter.ageSeconds ?? null,
      q && UUID.test(q) ? q : null,
      q && !UUID.test(q) ? q : null,
    ],
  );
}

/**
 * The sampler's one read a second: checkouts begun since the last one (still collecting votes,
 * found by their deadline on the coordinator's index of undecided checkouts; `sinceDeadline` is
 * the latest seen) and the ones announced decided since (`decidedIds`), as rows.
 */
export async function changedCheckouts(
  db: Queryable,
  sinceDeadline: Date | undefined,
  decidedIds: readonly string[],
): Promise<{ rows: CheckoutRow[]; latestDeadline: Date | undefined }> {
  const rows = await db.query<Array<CheckoutRow & { deadline: Date | null }>>(
    `WITH begun AS (
       SELECT id, deadline FROM tpc_transactions
        WHERE state = 'PREPARING' AND ($1::timestamptz IS NULL OR deadline > $1)
        ORDER BY deadline DESC LIMIT ${TABLE_ROWS}),
     wanted AS (SELECT id, deadline FROM begun UNION SELECT unnest($2::uuid[]), NULL::timestamptz)
     SELECT ${COLUMNS}, w.deadline FROM wanted w JOIN orders o ON o.id = w.id ORDER BY o.created_at`,
    [sinceDeadline ?? null, decidedIds],
  );
  let latestDeadline = sinceDeadline;
  for (const row of rows)
    if (row.deadline && (!latestDeadline || row.deadline > latestDeadline)) latestDeadline = row.deadline;
  return { rows: rows.map(({ deadline: _deadline, ...row }) => row), latestDeadline };
}

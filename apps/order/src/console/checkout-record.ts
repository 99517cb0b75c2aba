import type { Queryable } from '@shop/service-kit';

/*
 * What the order service recorded of one checkout: the order row, the coordinator's rows
 * (two-phase-commit's tpc_transactions, tpc_participants, tpc_held_prepares) and the messages
 * its outbox still holds for it (sent rows are pruned after retention). Read-only, for one page.
 */

export interface OutboxMessage {
  type: string;
  recipient: string;
  causationId: string | null;
  traceparent: string | null;
  createdAt: Date;
  sentAt: Date | null;
}

export interface CoordinatorParticipant {
  participant: string;
  vote: 'yes' | 'no' | null;
  voteReason: string | null;
  votedAt: Date | null;
  ackedAt: Date | null;
  resends: number;
  nextResendAt: Date | null;
}

export interface CheckoutRecord {
  order: {
    id: string;
    customerId: string;
    status: string;
    reason: string | null;
    total: string;
    currency: string;
    createdAt: Date;
    decidedAt: Date | null;
    items: Array<{ sku: string; quantity: number; unitPrice: string }>;
  };
  transaction: {
    state: string;
    decisionReason: string | null;
    deadline: Date;
    createdAt: Date;
    decidedAt: Date | null;
    completedAt: Date | null;
  } | null;
  participants: CoordinatorParticipant[];
  /** Prepares held for a later stage, not sent (yet, or ever: decided first). */
  held: Array<{ participant: string; stage: number }>;
  messages: OutboxMessage[];
  /** The database's clock when read. */
  now: Date;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** One checkout as recorded here; undefined if there is no such order. */
export async function readCheckoutRecord(db: Queryable, id: string): Promise<CheckoutRecord | undefined> {
  if (!UUID.test(id)) return undefined;
  const [order] = await db.query<Array<CheckoutRecord['order'] & { now: Date }>>(
    `SELECT o.id, o.customer_id AS "customerId", o.status, o.reason, o.total::text AS total, o.currency,
            o.created_at AS "createdAt", o.decided_at AS "decidedAt", now() AS now,
            coalesce((SELECT json_agg(json_build_object('sku', i.sku, 'quantity', i.quantity, 'unitPrice', i.unit_price::text)
                                      ORDER BY i.sku) FROM order_items i WHERE i.order_id = o.id), '[]') AS items
       FROM orders o WHERE o.id = $1`,
    [id],
  );
  if (!order) return undefined;
  const [transaction] = await db.query<Array<NonNullable<CheckoutRecord['transaction']>>>(
    `SELECT state, decision_reason AS "decisionReason", deadline, created_at AS "createdAt",
            decided_at AS "decidedAt", completed_at AS "completedAt"
       FROM tpc_transactions WHERE id = $1`,
    [id],
  );
  const participants = await db.query<CoordinatorParticipant[]>(
    `SELECT participant, vote, vote_reason AS "voteReason", voted_at AS "votedAt", acked_at AS "ackedAt",
            resends, next_resend_at AS "nextResendAt"
       FROM tpc_participants WHERE transaction_id = $1 ORDER BY participant`,
    [id],
  );
  const held = await db.query<CheckoutRecord['held']>(
    `SELECT participant, stage FROM tpc_held_prepares WHERE transaction_id = $1 ORDER BY stage, participant`,
    [id],
  );
  // The outbox has no index on the transaction: a scan of what retention keeps, for one page view.
  const messages = await db.query<OutboxMessage[]>(
    `SELECT message_type AS type, body->>'recipient' AS recipient, body->>'causationId' AS "causationId",
            body->'traceContext'->>'traceparent' AS traceparent, created_at AS "createdAt", sent_at AS "sentAt"
       FROM outbox WHERE body->>'transactionId' = $1 ORDER BY id`,
    [id],
  );
  const { now, ...orderRow } = order;
  return { order: orderRow, transaction: transaction ?? null, participants, held, messages, now };
}

/** The trace id of a W3C traceparent (`00-<trace id>-<span id>-<flags>`), if it is one. */
export function traceIdOf(traceparent: string | null | undefined): string | undefined {
  const match = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/.exec(traceparent ?? '');
  return match && !/^0+$/.test(match[1]) ? match[1] : undefined;
}

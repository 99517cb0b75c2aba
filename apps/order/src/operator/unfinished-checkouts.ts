import type { DataSource } from 'typeorm';
import type { Queryable } from '@shop/service-kit';

/** A checkout not yet complete, as the operator sees it: in doubt, or decided and not acknowledged. */
export interface UnfinishedCheckout {
  id: string;
  stage: 'in-doubt' | 'unacknowledged';
  state: string;
  decisionReason: string | null;
  deadline: Date;
  createdAt: Date;
  decidedAt: Date | null;
  ageMs: number;
  participants: Array<{
    participant: string;
    vote: string | null;
    voteReason: string | null;
    acked: boolean;
    resends: number;
    /** When the decision is next sent again to it (ISO time), if it has not acknowledged. */
    nextResendAt: string | null;
  }>;
}

/*
 * The operator's read model of the coordinator's tables (two-phase-commit's schema.migration.ts):
 * read-only queries, outside any checkout's unit of work.
 */

/** Checkouts not yet complete and older than `olderThanMs`, oldest first. */
export function unfinishedCheckouts(
  dataSource: DataSource,
  olderThanMs: number,
  limit = 100,
): Promise<UnfinishedCheckout[]> {
  return dataSource.query<UnfinishedCheckout[]>(
    `SELECT t.id,
            CASE WHEN t.state = 'PREPARING' THEN 'in-doubt' ELSE 'unacknowledged' END AS stage,
            t.state, t.decision_reason AS "decisionReason", t.deadline, t.created_at AS "createdAt",
            t.decided_at AS "decidedAt", floor(extract(epoch FROM now() - t.created_at) * 1000)::bigint::int AS "ageMs",
            json_agg(json_build_object('participant', p.participant, 'vote', p.vote, 'voteReason', p.vote_reason,
                                       'acked', p.acked_at IS NOT NULL, 'resends', p.resends,
                                       'nextResendAt', p.next_resend_at)
                     ORDER BY p.participant) AS participants
       FROM tpc_transactions t JOIN tpc_participants p ON p.transaction_id = t.id
      WHERE t.completed_at IS NULL AND t.created_at <= now() - make_interval(secs => $1)
      GROUP BY t.id ORDER BY t.created_at LIMIT $2`,
    [olderThanMs / 1000, limit],
  );
}

/** How many checkouts are still collecting votes, and how long the oldest has been. */
export async function inDoubtCheckouts(dataSource: Queryable): Promise<{ count: number; oldestAgeSeconds: number }> {
  const [row] = await dataSource.query<Array<{ count: number; oldest: number | null }>>(
    `SELECT count(*)::int AS count, extract(epoch FROM now() - min(created_at))::float8 AS oldest
       FROM tpc_transactions WHERE state = 'PREPARING'`,
  );
  return { count: row.count, oldestAgeSeconds: row.oldest ?? 0 };
}

import type { Outcome } from '@shop/contracts';
import type { UnitOfWork } from '@shop/outbox';

/*
 * The SQL of the coordinator's sweeps (coordinator.ts `abortExpired`, `resendUnacked`): what is
 * due, taken with the rows another replica holds skipped, and the re-sends scheduled.
 */

/** Takes up to `limit` checkouts still collecting votes past their deadline (rows another replica holds are skipped). */
export async function takeExpired(unit: UnitOfWork<unknown>, limit: number): Promise<string[]> {
  const rows = await unit.manager.query<Array<{ id: string }>>(
    `SELECT id FROM tpc_transactions WHERE state = 'PREPARING' AND deadline <= now()
      ORDER BY deadline LIMIT $1 FOR UPDATE SKIP LOCKED`,
    [limit],
  );
  return rows.map((row) => row.id);
}

/** A decision not yet acknowledged by one participant, due to be sent again. */
export interface UnackedDecision {
  transactionId: string;
  participant: string;
  outcome: Outcome;
  reason: string | null;
  resends: number;
}

/**
 * Takes up to `limit` decisions whose re-send is due `slackSeconds` ago and not acked (rows
 * another replica holds are skipped, so replicas never re-send the same one together).
 */
export async function takeUnacked(
  unit: UnitOfWork<unknown>,
  limit: number,
  slackSeconds: number,
): Promise<UnackedDecision[]> {
  const rows = await unit.manager.query<
    Array<{
      transaction_id: string;
      participant: string;
      resends: number;
      state: string;
      decision_reason: string | null;
    }>
  >(
    `SELECT p.transaction_id, p.participant, p.resends, t.state, t.decision_reason
       FROM tpc_participants p JOIN tpc_transactions t ON t.id = p.transaction_id
      WHERE p.acked_at IS NULL AND p.next_resend_at <= now() - make_interval(secs => $2)
      ORDER BY p.next_resend_at LIMIT $1 FOR UPDATE OF p SKIP LOCKED`,
    [limit, slackSeconds],
  );
  return rows.map((row) => ({
    transactionId: row.transaction_id,
    participant: row.participant,
    outcome: row.state === 'COMMITTED' ? 'commit' : 'abort',
    reason: row.decision_reason,
    resends: row.resends,
  }));
}

/** Counts a re-send of each decision and schedules its next one, `nextAfterMs(resends)` from now. */
export async function scheduleResends(
  unit: UnitOfWork<unknown>,
  sent: readonly UnackedDecision[],
  nextAfterMs: (resends: number) => number,
): Promise<void> {
  if (sent.length === 0) return;
  await unit.manager.query(
    `UPDATE tpc_participants p SET resends = p.resends + 1, next_resend_at = now() + make_interval(secs => s.after)
       FROM unnest($1::uuid[], $2::text[], $3::float8[]) AS s(transaction_id, participant, after)
      WHERE p.transaction_id = s.transaction_id AND p.participant = s.participant`,
    [
      sent.map((decision) => decision.transactionId),
      sent.map((decision) => decision.participant),
      sent.map((decision) => nextAfterMs(decision.resends + 1) / 1000),
    ],
  );
}

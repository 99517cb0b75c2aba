import type { Outcome } from '@shop/contracts';
import type { UnitOfWork } from '@shop/outbox';

/*
 * The SQL of the coordinator's sweeps (coordinator.ts `abortExpired`, `resendUnacked`): what is
 * due, taken with the rows another replica holds skipped, the re-sends scheduled, and the aborts
 * an older coordinator left waiting for acks completed.
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

/**
 * Completes the aborted checkouts `transactionIds` (their unacked decisions were due: an older
 * coordinator, which waited for acks of aborts, decided them) and stops their re-sends. A
 * checkout another batch holds is skipped (this sweep holds its participant rows: waiting for it
 * could deadlock), and taken again at the next sweep. Answers how many it completed.
 */
export async function completeAborted(unit: UnitOfWork<unknown>, transactionIds: readonly string[]): Promise<number> {
  if (transactionIds.length === 0) return 0;
  const [rows] = await unit.manager.query<[Array<{ id: string }>, number]>(
    `WITH taken AS (
       SELECT id FROM tpc_transactions WHERE id = ANY($1::uuid[]) AND state = 'ABORTED' FOR UPDATE SKIP LOCKED),
     stopped AS (
       UPDATE tpc_participants p SET next_resend_at = NULL FROM taken WHERE p.transaction_id = taken.id)
     UPDATE tpc_transactions t SET completed_at = COALESCE(t.completed_at, now()) FROM taken WHERE t.id = taken.id
     RETURNING t.id`,
    [[...new Set(transactionIds)]],
  );
  return rows.length;
}

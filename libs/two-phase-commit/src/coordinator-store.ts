import type { Outcome, VotePayload } from '@shop/contracts';
import type { UnitOfWork } from '@shop/outbox';
import type { Decided, ParticipantRecord, Recorded } from './coordinator-rules';

/*
 * The coordinator's SQL (its tables: schema.migration.ts, tpc_transactions and tpc_participants).
 * A batch locks every checkout it will touch in one statement, in id order, reads their
 * participants in the next, and writes its votes, its decisions and its acks in one statement
 * each, whatever the number of messages.
 */

/** What a batch writes, collected as its messages are applied (`coordinator.ts`). */
export interface CoordinatorChanges {
  votes: Array<{ transactionId: string; participant: string; vote: VotePayload }>;
  decisions: Decided[];
  acks: Array<{ transactionId: string; participant: string; completed: boolean }>;
}

export const noChanges = (): CoordinatorChanges => ({ votes: [], decisions: [], acks: [] });

/** An ack's round trip: from the decision to the ack recorded, and how often the decision was re-sent. */
export interface AckSample {
  seconds: number;
  resends: number;
}

/**
 * Records a new checkout and its participants; answers its prepare deadline, `timeoutMs` after
 * now by the database's clock (the one every deadline is judged by), and that now.
 */
export async function insertCheckout(
  unit: UnitOfWork<unknown>,
  id: string,
  timeoutMs: number,
  participants: readonly string[],
): Promise<{ deadline: Date; now: Date }> {
  const [row] = await unit.manager.query<Array<{ deadline: Date; now: Date }>>(
    `WITH transaction AS (
       INSERT INTO tpc_transactions (id, state, deadline)
       VALUES ($1, 'PREPARING', now() + make_interval(secs => $2::double precision / 1000)) RETURNING deadline),
     participants AS (INSERT INTO tpc_participants (transaction_id, participant) SELECT $1, unnest($3::text[]))
     SELECT deadline, now() AS now FROM transaction`,
    [id, timeoutMs, participants],
  );
  return row;
}

/**
 * Locks the checkouts `transactionIds` in id order (a second batch with one of them, in this
 * replica or another, waits here; taking them in one order, batches never wait on each other
 * crosswise) and answers each as recorded, with its participants' votes and acks. One missing
 * was never begun here.
 */
export async function lockCheckouts(
  unit: UnitOfWork<unknown>,
  transactionIds: readonly string[],
): Promise<Map<string, Recorded>> {
  const ids = [...new Set(transactionIds)];
  const locked = await unit.manager.query<
    Array<{
      id: string;
      state: 'PREPARING' | 'COMMITTED' | 'ABORTED';
      decision_reason: string | null;
      expired: boolean;
    }>
  >(
    `SELECT id, state, decision_reason, deadline <= now() AS expired FROM tpc_transactions
      WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE`,
    [ids],
  );
  if (locked.length === 0) return new Map();
  // A statement of its own: it sees what a batch that held these locks before this one committed
  // (the locking statement's snapshot is older than its wait for the lock).
  const participants = await unit.manager.query<
    Array<{
      transaction_id: string;
      participant: string;
      vote: 'yes' | 'no' | null;
      vote_reason: string | null;
      acked: boolean;
    }>
  >(
    `SELECT transaction_id, participant, vote, vote_reason, acked_at IS NOT NULL AS acked
       FROM tpc_participants WHERE transaction_id = ANY($1::uuid[])`,
    [locked.map((row) => row.id)],
  );
  const recorded = new Map<string, Recorded>();
  const byCheckout = new Map<string, Record<string, ParticipantRecord>>();
  for (const row of locked) {
    const own: Record<string, ParticipantRecord> = {};
    byCheckout.set(row.id, own);
    recorded.set(row.id, { state: row.state, reason: row.decision_reason, expired: row.expired, participants: own });
  }
  for (const { transaction_id, participant, vote, vote_reason, acked } of participants) {
    const payload: VotePayload | null =
      vote === 'yes' ? { vote } : vote === 'no' ? ({ vote, reason: vote_reason } as VotePayload) : null;
    byCheckout.get(transaction_id)![participant] = { vote: payload, acked };
  }
  return recorded;
}

/**
 * Writes a batch's changes, in the order they depend on one another: votes, then decisions
 * (state, reason, and when each participant's copy is re-sent unless acked: `resendAfterMs`),
 * then acks (completing each checkout whose last ack this was). Answers each decision's latency
 * (creation to decision) and each ack's round trip, keyed `transactionId/participant`.
 */
export async function writeChanges(
  unit: UnitOfWork<unknown>,
  changes: CoordinatorChanges,
  resendAfterMs: () => number,
): Promise<{ latencySeconds: Map<string, number>; ackSamples: Map<string, AckSample> }> {
  const { manager } = unit;
  const { votes, decisions, acks } = changes;
  if (votes.length > 0) {
    await manager.query(
      `UPDATE tpc_participants p SET vote = v.vote, vote_reason = v.reason, voted_at = now()
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) AS v(transaction_id, participant, vote, reason)
        WHERE p.transaction_id = v.transaction_id AND p.participant = v.participant`,
      [
        votes.map((vote) => vote.transactionId),
        votes.map((vote) => vote.participant),
        votes.map(({ vote }) => vote.vote),
        votes.map(({ vote }) => (vote.vote === 'no' ? vote.reason : null)),
      ],
    );
  }
  const latencySeconds = new Map<string, number>();
  if (decisions.length > 0) {
    // (TypeORM answers an UPDATE with [rows, affected count].)
    const [rows] = await manager.query<[Array<{ id: string; latency: number }>, number]>(
      `WITH decision AS (
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::float8[]) AS d(id, state, reason, resend_after)),
       resends AS (
         UPDATE tpc_participants p SET next_resend_at = now() + make_interval(secs => d.resend_after)
           FROM decision d WHERE p.transaction_id = d.id)
       UPDATE tpc_transactions t SET state = d.state, decision_reason = d.reason, decided_at = now()
         FROM decision d WHERE t.id = d.id
       RETURNING t.id, extract(epoch FROM t.decided_at - t.created_at)::float8 AS latency`,
      [
        decisions.map((decision) => decision.transactionId),
        decisions.map((decision) => (decision.outcome === 'commit' ? 'COMMITTED' : 'ABORTED')),
        decisions.map((decision) => decision.reason),
        decisions.map(() => resendAfterMs() / 1000),
      ],
    );
    for (const row of rows) latencySeconds.set(row.id, row.latency);
  }
  const ackSamples = new Map<string, AckSample>();
  if (acks.length > 0) {
    const rows = await manager.query<
      Array<{ transaction_id: string; participant: string; round_trip: number; resends: number }>
    >(
      `WITH ack AS (
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::bool[]) AS a(transaction_id, participant, completed)),
       acked AS (
         UPDATE tpc_participants p SET acked_at = now(), next_resend_at = NULL
           FROM ack a WHERE p.transaction_id = a.transaction_id AND p.participant = a.participant
         RETURNING p.transaction_id, p.participant, p.resends),
       completed AS (
         UPDATE tpc_transactions t SET completed_at = now() FROM ack a WHERE t.id = a.transaction_id AND a.completed)
       SELECT a.transaction_id, a.participant, a.resends,
              extract(epoch FROM now() - t.decided_at)::float8 AS round_trip
         FROM acked a JOIN tpc_transactions t ON t.id = a.transaction_id`,
      [acks.map((ack) => ack.transactionId), acks.map((ack) => ack.participant), acks.map((ack) => ack.completed)],
    );
    for (const row of rows) {
      ackSamples.set(`${row.transaction_id}/${row.participant}`, { seconds: row.round_trip, resends: row.resends });
    }
  }
  return { latencySeconds, ackSamples };
}

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

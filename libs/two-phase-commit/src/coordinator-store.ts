import type { VotePayload } from '@shop/contracts';
import type { UnitOfWork } from '@shop/outbox';
import { type Decided, needsAcks, type ParticipantRecord, type Recorded } from './coordinator-rules';

/*
 * The coordinator's SQL (its tables: schema.migration.ts, tpc_transactions and tpc_participants,
 * the participants asked so far; held-prepares.migration.ts, tpc_held_prepares, the later stages').
 * A batch locks every checkout it will touch in one statement, in id order, reads their
 * participants in the next, and writes its votes, its decisions and its acks in one statement
 * each, whatever the number of messages.
 */

/** What a batch writes, collected as its messages are applied (`coordinator.ts`). */
export interface CoordinatorChanges {
  votes: Array<{ transactionId: string; participant: string; vote: VotePayload }>;
  /** The held prepares to send now (a stage whose turn came). */
  asks: Array<{ transactionId: string; participant: string }>;
  decisions: Decided[];
  acks: Array<{ transactionId: string; participant: string; completed: boolean }>;
}

export const noChanges = (): CoordinatorChanges => ({ votes: [], asks: [], decisions: [], acks: [] });

/** A prepare held for a later stage: what its participant is asked (the kit adds its name and the deadline). */
export interface HeldPrepare {
  participant: string;
  stage: number;
  request: object;
}

/** A held prepare released: to send now, with the checkout's deadline and the database's now. */
export interface ReleasedPrepare {
  transactionId: string;
  participant: string;
  request: object;
  deadline: Date;
  now: Date;
}

/** An ack's round trip: from the decision to the ack recorded, and how often the decision was re-sent. */
export interface AckSample {
  seconds: number;
  resends: number;
}

/** A new checkout to record: its id, how long its participants have to vote, the prepares held for later stages. */
export interface NewCheckout {
  id: string;
  timeoutMs: number;
  held: readonly HeldPrepare[];
}

/**
 * Records new checkouts in one statement, the participants `asked` now (the same for each) and
 * the prepares held for later stages; answers each one's prepare deadline, `timeoutMs` after now
 * by the database's clock (the one every deadline is judged by), and that now, in `checkouts`' order.
 */
export async function insertCheckouts(
  unit: UnitOfWork<unknown>,
  checkouts: readonly NewCheckout[],
  asked: readonly string[],
): Promise<Array<{ deadline: Date; now: Date }>> {
  if (checkouts.length === 0) return [];
  const held = checkouts.flatMap(({ id, held }) => held.map((prepare) => ({ id, ...prepare })));
  const rows = await unit.manager.query<Array<{ id: string; deadline: Date; now: Date }>>(
    `WITH transaction AS (
       INSERT INTO tpc_transactions (id, state, deadline)
       SELECT t.id, 'PREPARING', now() + make_interval(secs => t.timeout_ms / 1000)
         FROM unnest($1::uuid[], $2::double precision[]) AS t(id, timeout_ms)
       RETURNING id, deadline),
     participants AS (
       INSERT INTO tpc_participants (transaction_id, participant)
       SELECT t.id, p.participant FROM unnest($1::uuid[]) AS t(id), unnest($3::text[]) AS p(participant)),
     held AS (
       INSERT INTO tpc_held_prepares (transaction_id, participant, stage, payload)
       SELECT * FROM unnest($4::uuid[], $5::text[], $6::int[], $7::jsonb[]))
     SELECT id, deadline, now() AS now FROM transaction`,
    [
      checkouts.map((checkout) => checkout.id),
      checkouts.map((checkout) => checkout.timeoutMs),
      asked,
      held.map((prepare) => prepare.id),
      held.map((prepare) => prepare.participant),
      held.map((prepare) => prepare.stage),
      held.map((prepare) => JSON.stringify(prepare.request)),
    ],
  );
  const byId = new Map(rows.map((row) => [row.id, row]));
  return checkouts.map((checkout) => byId.get(checkout.id)!);
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
  // (the locking statement's snapshot is older than its wait for the lock). Stage 0: asked.
  const participants = await unit.manager.query<
    Array<{
      transaction_id: string;
      participant: string;
      vote: 'yes' | 'no' | null;
      vote_reason: string | null;
      acked: boolean;
      stage: number;
    }>
  >(
    `SELECT transaction_id, participant, vote, vote_reason, acked_at IS NOT NULL AS acked, 0 AS stage
       FROM tpc_participants WHERE transaction_id = ANY($1::uuid[])
     UNION ALL
     SELECT transaction_id, participant, NULL, NULL, false, stage
       FROM tpc_held_prepares WHERE transaction_id = ANY($1::uuid[])`,
    [locked.map((row) => row.id)],
  );
  const byCheckout = new Map<string, { asked: Record<string, ParticipantRecord>; later: string[][] }>();
  for (const row of locked) byCheckout.set(row.id, { asked: {}, later: [] });
  for (const { transaction_id, participant, vote, vote_reason, acked, stage } of participants) {
    const own = byCheckout.get(transaction_id)!;
    if (stage > 0) {
      (own.later[stage - 1] ??= []).push(participant);
      continue;
    }
    const payload: VotePayload | null =
      vote === 'yes' ? { vote } : vote === 'no' ? ({ vote, reason: vote_reason } as VotePayload) : null;
    own.asked[participant] = { vote: payload, acked };
  }
  const recorded = new Map<string, Recorded>();
  for (const row of locked) {
    const { asked, later } = byCheckout.get(row.id)!;
    recorded.set(row.id, {
      state: row.state,
      reason: row.decision_reason,
      expired: row.expired,
      participants: asked,
      later: later.filter(Boolean).map((stage) => stage.sort()),
    });
  }
  return recorded;
}

/**
 * Writes a batch's changes, in the order they depend on one another: votes, then asks (a held
 * prepare's participant joins the asked ones; answered, to be sent), then decisions (state,
 * reason, the prepares still held dropped; a commit: when each participant's copy is re-sent
 * unless acked, `resendAfterMs`; an abort: complete, nothing to re-send, `needsAcks`), then acks (completing each checkout whose last ack this was). Answers
 * the released prepares, each decision's latency (creation to decision) and each ack's round
 * trip, keyed `transactionId/participant`.
 */
export async function writeChanges(
  unit: UnitOfWork<unknown>,
  changes: CoordinatorChanges,
  resendAfterMs: () => number,
): Promise<{ released: ReleasedPrepare[]; latencySeconds: Map<string, number>; ackSamples: Map<string, AckSample> }> {
  const { manager } = unit;
  const { votes, asks, decisions, acks } = changes;
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
  const released: ReleasedPrepare[] = [];
  if (asks.length > 0) {
    const rows = await manager.query<
      Array<{ transaction_id: string; participant: string; payload: object; deadline: Date; now: Date }>
    >(
      `WITH released AS (
         DELETE FROM tpc_held_prepares h USING unnest($1::uuid[], $2::text[]) AS a(transaction_id, participant)
          WHERE h.transaction_id = a.transaction_id AND h.participant = a.participant
         RETURNING h.transaction_id, h.participant, h.payload),
       asked AS (INSERT INTO tpc_participants (transaction_id, participant) SELECT transaction_id, participant FROM released)
       SELECT r.transaction_id, r.participant, r.payload, t.deadline, now() AS now
         FROM released r JOIN tpc_transactions t ON t.id = r.transaction_id
        ORDER BY r.transaction_id, r.participant`,
      [asks.map((ask) => ask.transactionId), asks.map((ask) => ask.participant)],
    );
    for (const row of rows) {
      released.push({
        transactionId: row.transaction_id,
        participant: row.participant,
        request: row.payload,
        deadline: row.deadline,
        now: row.now,
      });
    }
  }
  const latencySeconds = new Map<string, number>();
  if (decisions.length > 0) {
    // (TypeORM answers an UPDATE with [rows, affected count].)
    const [rows] = await manager.query<[Array<{ id: string; latency: number }>, number]>(
      `WITH decision AS (
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::float8[]) AS d(id, state, reason, resend_after)),
       resends AS (
         UPDATE tpc_participants p SET next_resend_at = now() + make_interval(secs => d.resend_after)
           FROM decision d WHERE p.transaction_id = d.id AND d.resend_after IS NOT NULL),
       never_asked AS (DELETE FROM tpc_held_prepares h USING decision d WHERE h.transaction_id = d.id)
       UPDATE tpc_transactions t SET state = d.state, decision_reason = d.reason, decided_at = now(),
              completed_at = CASE WHEN d.resend_after IS NULL THEN now() END
         FROM decision d WHERE t.id = d.id
       RETURNING t.id, extract(epoch FROM t.decided_at - t.created_at)::float8 AS latency`,
      [
        decisions.map((decision) => decision.transactionId),
        decisions.map((decision) => (decision.outcome === 'commit' ? 'COMMITTED' : 'ABORTED')),
        decisions.map((decision) => decision.reason),
        // An abort needs no acks: no re-send (null), complete as decided.
        decisions.map((decision) => (needsAcks(decision.outcome) ? resendAfterMs() / 1000 : null)),
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
  return { released, latencySeconds, ackSamples };
}

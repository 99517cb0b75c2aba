import type { VoteNoReason } from '@shop/contracts';
import type { UnitOfWork } from '@shop/outbox';
import type { Change, Recorded } from './participant-rules';

/*
 * The participant's SQL (its table: schema.migration.ts, tpc_participant_transactions). A batch
 * takes every row it will touch in one statement, in id order, and writes the new states in one:
 * two statements for any number of messages.
 */

export interface LockedTransactions {
  /** Each checkout as recorded before this batch (NONE: its row was inserted by this batch). */
  recorded: Map<string, Recorded>;
  /** This database's clock at the transaction's start (`now()`, ms): what deadlines are judged by. */
  databaseNowMs: number;
}

/**
 * Locks the rows of `transactionIds` in id order, inserting those never seen (PREPARING: a state
 * never committed, since this batch writes every row it inserts before it commits). A second
 * batch with one of these checkouts, in this replica or another, waits here for this one to end;
 * taking them in one order, batches never wait on each other crosswise.
 */
export async function lockTransactions(
  unit: UnitOfWork<unknown>,
  transactionIds: readonly string[],
): Promise<LockedTransactions> {
  // An update that changes nothing locks an existing row and returns it as it is.
  const rows = await unit.manager.query<
    Array<{ transaction_id: string; state: string; vote_reason: string | null; now: Date }>
  >(
    `INSERT INTO tpc_participant_transactions AS t (transaction_id, state)
     SELECT id, 'PREPARING' FROM unnest($1::uuid[]) AS id ORDER BY id
     ON CONFLICT (transaction_id) DO UPDATE SET state = t.state
     RETURNING transaction_id, state, vote_reason, now() AS now`,
    [[...new Set(transactionIds)]],
  );
  const recorded = new Map<string, Recorded>();
  for (const row of rows) recorded.set(row.transaction_id, asRecorded(row.state, row.vote_reason));
  return { recorded, databaseNowMs: rows[0]?.now.getTime() ?? Number.NaN };
}

function asRecorded(state: string, reason: string | null): Recorded {
  if (state === 'PREPARING') return { state: 'NONE' };
  if (state === 'REFUSED') return { state, reason: reason as VoteNoReason };
  return { state } as Recorded;
}

/** Writes the batch's new states, in one statement (their rows are locked: `lockTransactions`). */
export async function writeStates(unit: UnitOfWork<unknown>, changes: ReadonlyMap<string, Change>): Promise<void> {
  if (changes.size === 0) return;
  const written = [...changes];
  // now() is the transaction's start. A vote without a reason is a yes: prepared then.
  await unit.manager.query(
    `UPDATE tpc_participant_transactions t
        SET state = c.state,
            vote_reason = CASE WHEN c.voted THEN c.vote_reason ELSE t.vote_reason END,
            prepared_at = CASE WHEN c.voted THEN CASE WHEN c.vote_reason IS NULL THEN now() END ELSE t.prepared_at END,
            decided_at = CASE WHEN c.decided THEN now() ELSE t.decided_at END
       FROM unnest($1::uuid[], $2::text[], $3::bool[], $4::text[], $5::bool[]) AS c(id, state, voted, vote_reason, decided)
      WHERE t.transaction_id = c.id`,
    [
      written.map(([id]) => id),
      written.map(([, change]) => change.state),
      written.map(([, change]) => change.vote !== undefined),
      written.map(([, change]) => (change.vote?.vote === 'no' ? change.vote.reason : null)),
      written.map(([, change]) => change.decided === true),
    ],
  );
}

/**
 * Takes up to `limit` checkouts held PREPARED longer than `olderThanMs` and not asked about for
 * `everyMs`, and records that they are asked about now. Rows another replica is taking are
 * skipped, so replicas never ask twice.
 */
export async function takeInDoubt(
  unit: UnitOfWork<unknown>,
  olderThanMs: number,
  everyMs: number,
  limit: number,
): Promise<Array<{ transactionId: string; preparedAt: Date }>> {
  // An UPDATE answers its rows and their count.
  const [rows] = await unit.manager.query<[Array<{ transaction_id: string; prepared_at: Date }>, number]>(
    `UPDATE tpc_participant_transactions SET last_inquiry_at = now(), inquiries = inquiries + 1
      WHERE transaction_id IN (
        SELECT transaction_id FROM tpc_participant_transactions
         WHERE state = 'PREPARED' AND prepared_at <= now() - make_interval(secs => $1)
           AND (last_inquiry_at IS NULL OR last_inquiry_at <= now() - make_interval(secs => $2))
         ORDER BY prepared_at LIMIT $3 FOR UPDATE SKIP LOCKED)
      RETURNING transaction_id, prepared_at`,
    [olderThanMs / 1000, everyMs / 1000, limit],
  );
  return rows
    .map((row) => ({ transactionId: row.transaction_id, preparedAt: row.prepared_at }))
    .sort((a, b) => a.preparedAt.getTime() - b.preparedAt.getTime());
}

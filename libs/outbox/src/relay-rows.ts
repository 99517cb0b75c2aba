import type { DataSource } from 'typeorm';
import type { OutgoingMessage } from '@shop/messaging';

/**
 * The relay's statements on the outbox table, each one statement committed on its own (no
 * transaction stays open while the broker confirms): claim a batch under a lease, give a lease
 * or a grace period back, put failed rows off, mark rows sent, prune.
 */

/** A claimed row: the message, and how many times it was claimed (this claim included). */
export interface ClaimedRow {
  message: OutgoingMessage;
  attempts: number;
}

interface OutboxRow {
  message_id: string;
  message_type: string;
  routing_key: string;
  body: unknown;
  headers: Record<string, unknown>;
  attempts: number;
}

/**
 * Claims up to `limit` unsent rows that are due (with `includeNew`, also rows never tried, still
 * in the fast path's grace period) and leases them for `leaseMs`: no other relay takes them
 * until then (`FOR UPDATE SKIP LOCKED`, then committed).
 */
export async function claimRows(
  dataSource: DataSource,
  { limit, leaseMs, includeNew }: { limit: number; leaseMs: number; includeNew: boolean },
): Promise<ClaimedRow[]> {
  const [rows] = await dataSource.query<[OutboxRow[], number]>(
    `UPDATE outbox o SET attempts = o.attempts + 1, next_attempt_at = now() + make_interval(secs => $2)
       FROM (SELECT id FROM outbox
              WHERE sent_at IS NULL AND (next_attempt_at <= now() ${includeNew ? 'OR attempts = 0' : ''})
              ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED) due
      WHERE o.id = due.id
     RETURNING o.message_id, o.message_type, o.routing_key, o.body, o.headers, o.attempts`,
    [limit, leaseMs / 1000],
  );
  return rows.map((row) => ({
    message: {
      messageId: row.message_id,
      type: row.message_type,
      routingKey: row.routing_key,
      body: row.body,
      headers: row.headers,
    },
    attempts: row.attempts,
  }));
}

/**
 * Ends the lease of claimed rows the broker could not take because it was unavailable: they are
 * due again at once, and the claim does not count as an attempt (the outage was not theirs).
 */
export async function giveLeaseBack(dataSource: DataSource, messageIds: readonly string[]): Promise<void> {
  await dataSource.query(
    `UPDATE outbox SET attempts = attempts - 1, next_attempt_at = now()
      WHERE message_id = ANY($1::uuid[]) AND sent_at IS NULL AND attempts > 0`,
    [messageIds],
  );
}

/**
 * Ends the fast path's grace period of rows it could not publish because the broker was
 * unavailable, so the relay sends them as soon as the broker is back. Rows a relay has claimed
 * meanwhile (`attempts` > 0) keep their lease.
 */
export async function giveGraceBack(dataSource: DataSource, messageIds: readonly string[]): Promise<void> {
  await dataSource.query(
    `UPDATE outbox SET next_attempt_at = now() WHERE message_id = ANY($1::uuid[]) AND sent_at IS NULL AND attempts = 0`,
    [messageIds],
  );
}

/** Puts each row off until its own next attempt (`delaysMs`, one per message id). */
export async function retryLater(
  dataSource: DataSource,
  messageIds: readonly string[],
  delaysMs: readonly number[],
): Promise<void> {
  await dataSource.query(
    `UPDATE outbox o SET next_attempt_at = now() + make_interval(secs => f.delay)
       FROM unnest($1::uuid[], $2::float8[]) AS f(message_id, delay) WHERE o.message_id = f.message_id`,
    [messageIds, delaysMs.map((ms) => ms / 1000)],
  );
}

/**
 * Marks rows sent and answers, for each one it marked, the seconds from written to sent (on the
 * database's clock, the one that stamped `created_at`). Committed without waiting for the disk
 * (`synchronous_commit = off`): a mark lost in a crash only makes the relay publish that row
 * again, which the inboxes deduplicate.
 */
export async function markSent(dataSource: DataSource, messageIds: readonly string[]): Promise<number[]> {
  // One statement, committed on its own: the CTE turns synchronous_commit off for just this
  // transaction (set_config(..., true)), which is what its commit then uses.
  const [marked] = await dataSource.query<[Array<{ lag: number }>, number]>(
    `WITH async_commit AS (SELECT set_config('synchronous_commit', 'off', true))
     UPDATE outbox SET sent_at = now() FROM async_commit
      WHERE message_id = ANY($1::uuid[]) AND sent_at IS NULL
     RETURNING extract(epoch FROM clock_timestamp() - created_at)::float8 AS lag`,
    [messageIds],
  );
  return marked.map((row) => row.lag);
}

/** Deletes up to 10 000 rows sent more than `retentionMs` ago. */
export async function pruneSent(dataSource: DataSource, retentionMs: number): Promise<void> {
  await dataSource.query(
    `DELETE FROM outbox WHERE id IN (
       SELECT id FROM outbox WHERE sent_at < now() - make_interval(secs => $1) LIMIT 10000)`,
    [retentionMs / 1000],
  );
}

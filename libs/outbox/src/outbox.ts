import type { EntityManager } from 'typeorm';
import type { OutgoingMessage } from '@shop/messaging';

/**
 * How long the relay leaves a new row to the process that wrote it, which publishes it right
 * after its commit (the unit of work's fast path); only a row still unsent after this is the relay's.
 */
export const FAST_PATH_GRACE_SECONDS = 2;

/**
 * Inserts a transaction's outbox rows (all of them, in one statement) and answers the database's
 * id of that transaction, read by the same statement: the unit of work calls it just before its
 * COMMIT, and asks for that id's fate if the COMMIT's reply is lost. With no rows, it only reads
 * the id, and answers null for a transaction that wrote nothing: reading its id would assign it
 * one, and a commit record and a WAL flush with it, for a read-only sweep.
 */
export async function writeOutboxRows(
  manager: EntityManager,
  rows: readonly OutgoingMessage[],
): Promise<string | null> {
  if (rows.length === 0) {
    const [{ id }] = await manager.query<Array<{ id: string | null }>>(
      `SELECT pg_current_xact_id_if_assigned()::text AS id`,
    );
    return id;
  }
  // One text for any number of rows (arrays, not a VALUES list): one prepared statement.
  const [{ id }] = await manager.query<Array<{ id: string }>>(
    `WITH written AS (
       INSERT INTO outbox (message_id, message_type, routing_key, body, headers, next_attempt_at)
       SELECT id, type, key, body, headers, now() + make_interval(secs => $6)
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::jsonb[], $5::jsonb[]) AS m(id, type, key, body, headers))
     SELECT pg_current_xact_id()::text AS id`,
    [
      rows.map((row) => row.messageId),
      rows.map((row) => row.type),
      rows.map((row) => row.routingKey),
      rows.map((row) => JSON.stringify(row.body)),
      rows.map((row) => JSON.stringify(row.headers ?? {})),
      FAST_PATH_GRACE_SECONDS,
    ],
  );
  return id;
}

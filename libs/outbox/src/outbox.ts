import type { EntityManager, QueryRunner } from 'typeorm';
import type { OutgoingMessage } from '@shop/messaging';

/**
 * How long the relay leaves a new row to the process that wrote it, which publishes it right
 * after its commit (see `OutboxPublisher`); only a row still unsent after this is the relay's.
 */
export const FAST_PATH_GRACE_SECONDS = 2;

/** What a transaction did with the outbox, kept on its query runner until it ends. */
const WRITTEN = Symbol('outbox rows written by this transaction');
const INSERTED = Symbol('how many of them are in the table already');
const DEFERRED = Symbol('rows are inserted together just before the commit');
type WithOutbox = QueryRunner & {
  data: { [WRITTEN]?: OutgoingMessage[]; [INSERTED]?: number; [DEFERRED]?: boolean };
};

/**
 * Writes messages to the outbox inside the caller's transaction: they are published if and only
 * if that transaction commits. Pass the EntityManager of the open transaction. Where an
 * `OutboxPublisher` watches the transaction, the rows are inserted together just before it
 * commits (one statement for a whole batch of handlers); otherwise at once.
 */
export async function writeToOutbox(manager: EntityManager, messages: readonly OutgoingMessage[]): Promise<void> {
  if (messages.length === 0) return;
  const queryRunner = manager.queryRunner;
  if (!queryRunner?.isTransactionActive) {
    throw new Error('writeToOutbox must run inside the transaction that changes the state');
  }
  const data = (queryRunner as WithOutbox).data;
  (data[WRITTEN] ??= []).push(...messages);
  if (!data[DEFERRED]) await insertWritten(queryRunner);
}

/** Inserts the rows this transaction wrote and has not inserted yet, in one statement. */
export async function insertWritten(queryRunner: QueryRunner): Promise<void> {
  const data = (queryRunner as WithOutbox).data;
  const written = data[WRITTEN] ?? [];
  const rows = written.slice(data[INSERTED] ?? 0);
  if (rows.length === 0) return;
  // One text for any number of rows (arrays, not a VALUES list): one prepared statement.
  await queryRunner.query(
    `INSERT INTO outbox (message_id, message_type, routing_key, body, headers, next_attempt_at)
     SELECT id, type, key, body, headers, now() + make_interval(secs => $6)
       FROM unnest($1::uuid[], $2::text[], $3::text[], $4::jsonb[], $5::jsonb[]) AS m(id, type, key, body, headers)`,
    [
      rows.map((row) => row.messageId),
      rows.map((row) => row.type),
      rows.map((row) => row.routingKey),
      rows.map((row) => JSON.stringify(row.body)),
      rows.map((row) => JSON.stringify(row.headers ?? {})),
      FAST_PATH_GRACE_SECONDS,
    ],
  );
  data[INSERTED] = written.length;
}

/** From now until it ends, the transaction on `queryRunner` inserts its rows when `insertWritten` is called. */
export function deferOutboxWrites(queryRunner: QueryRunner, deferred = true): void {
  (queryRunner as WithOutbox).data[DEFERRED] = deferred;
}

/** What the transaction on `queryRunner` has written to the outbox so far (for the fast path). */
export function writtenBy(queryRunner: QueryRunner): OutgoingMessage[] {
  return (queryRunner as WithOutbox).data[WRITTEN] ?? [];
}

/** Forgets what was written after the first `keep` rows (a savepoint was rolled back, or the transaction). */
export function forgetWrittenAfter(queryRunner: QueryRunner, keep: number): void {
  const data = (queryRunner as WithOutbox).data;
  if (data[WRITTEN]) data[WRITTEN].length = Math.min(data[WRITTEN].length, keep);
  if (data[INSERTED] !== undefined) data[INSERTED] = Math.min(data[INSERTED], keep);
}

/**
 * Inserts a transaction's outbox rows (all of them, in one statement) and answers the database's
 * id of that transaction, read by the same statement: the unit of work calls it just before its
 * COMMIT, and asks for that id's fate if the COMMIT's reply is lost. With no rows, it only reads the id.
 */
export async function writeOutboxRows(manager: EntityManager, rows: readonly OutgoingMessage[]): Promise<string> {
  if (rows.length === 0) {
    const [{ id }] = await manager.query<Array<{ id: string }>>(`SELECT pg_current_xact_id()::text AS id`);
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

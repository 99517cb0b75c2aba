import type { EntityManager, QueryRunner } from 'typeorm';
import type { OutgoingMessage } from '@shop/messaging';

/**
 * How long the relay leaves a new row to the process that wrote it, which publishes it right
 * after its commit (see `OutboxPublisher`); only a row still unsent after this is the relay's.
 */
export const FAST_PATH_GRACE_SECONDS = 2;

/** The rows a transaction wrote to the outbox, kept on its query runner until it ends. */
const WRITTEN = Symbol('outbox rows written by this transaction');
type WithWritten = QueryRunner & { data: { [WRITTEN]?: OutgoingMessage[] } };

/**
 * Writes messages to the outbox inside the caller's transaction: they are published if and only
 * if that transaction commits. Pass the EntityManager of the open transaction.
 */
export async function writeToOutbox(manager: EntityManager, messages: readonly OutgoingMessage[]): Promise<void> {
  if (messages.length === 0) return;
  const queryRunner = manager.queryRunner;
  if (!queryRunner?.isTransactionActive) {
    throw new Error('writeToOutbox must run inside the transaction that changes the state');
  }
  const params: unknown[] = [FAST_PATH_GRACE_SECONDS];
  const rows = messages.map((message) => {
    params.push(
      message.messageId,
      message.type,
      message.routingKey,
      JSON.stringify(message.body),
      JSON.stringify(message.headers ?? {}),
    );
    const n = params.length;
    return `($${n - 4}, $${n - 3}, $${n - 2}, $${n - 1}::jsonb, $${n}::jsonb, now() + make_interval(secs => $1))`;
  });
  await manager.query(
    `INSERT INTO outbox (message_id, message_type, routing_key, body, headers, next_attempt_at) VALUES ${rows.join(', ')}`,
    params,
  );
  const data = (queryRunner as WithWritten).data;
  (data[WRITTEN] ??= []).push(...messages);
}

/** What the transaction on `queryRunner` has written to the outbox so far (for the fast path). */
export function writtenBy(queryRunner: QueryRunner): OutgoingMessage[] {
  return (queryRunner as WithWritten).data[WRITTEN] ?? [];
}

/** Forgets what was written after the first `keep` rows (a savepoint was rolled back, or the transaction). */
export function forgetWrittenAfter(queryRunner: QueryRunner, keep: number): void {
  const written = (queryRunner as WithWritten).data[WRITTEN];
  if (written) written.length = Math.min(written.length, keep);
}

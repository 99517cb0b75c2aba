import type { EntityManager } from 'typeorm';
import type { OutgoingMessage } from '@shop/messaging';

/**
 * Writes messages to the outbox inside the caller's transaction: they are published if and only
 * if that transaction commits. Pass the EntityManager of the open transaction.
 */
export async function writeToOutbox(manager: EntityManager, messages: readonly OutgoingMessage[]): Promise<void> {
  if (messages.length === 0) return;
  if (!manager.queryRunner?.isTransactionActive) {
    throw new Error('writeToOutbox must run inside the transaction that changes the state');
  }
  const params: unknown[] = [];
  const rows = messages.map((message) => {
    params.push(
      message.messageId,
      message.type,
      message.routingKey,
      JSON.stringify(message.body),
      JSON.stringify(message.headers ?? {}),
    );
    const n = params.length;
    return `($${n - 4}, $${n - 3}, $${n - 2}, $${n - 1}::jsonb, $${n}::jsonb)`;
  });
  await manager.query(
    `INSERT INTO outbox (message_id, message_type, routing_key, body, headers) VALUES ${rows.join(', ')}`,
    params,
  );
}

import type { EntityManager } from 'typeorm';
import { CheckoutMessage, routingKey } from '@shop/contracts';
import { writeToOutbox } from '@shop/outbox';

/** Writes checkout messages to the outbox of the open transaction, routed to their recipients. */
export function send(manager: EntityManager, messages: readonly CheckoutMessage[]): Promise<void> {
  return writeToOutbox(
    manager,
    messages.map((message) => ({
      messageId: message.messageId,
      routingKey: routingKey(message.recipient, message.type),
      type: message.type,
      body: message,
      headers: message.traceContext,
    })),
  );
}

/** Exponential backoff with full jitter, capped: the delay before re-send number `attempt` (1-based). */
export function backoffMs(attempt: number, baseMs: number, capMs: number): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}

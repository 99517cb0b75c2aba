import type { EntityManager } from 'typeorm';
import { CheckoutMessage, routingKey } from '@shop/contracts';
import { currentTraceContext } from '@shop/messaging';
import { writeToOutbox } from '@shop/outbox';

/**
 * Writes checkout messages to the outbox of the open transaction, routed to their recipients. A
 * message without a trace context gets the active one (the request or the handler that sends
 * it), in its envelope and as AMQP headers, so its handler continues the same trace.
 */
export function send(manager: EntityManager, messages: readonly CheckoutMessage[]): Promise<void> {
  const active = currentTraceContext();
  return writeToOutbox(
    manager,
    messages.map((message) => {
      const traceContext = Object.keys(message.traceContext).length > 0 ? message.traceContext : active;
      return {
        messageId: message.messageId,
        routingKey: routingKey(message.recipient, message.type),
        type: message.type,
        body: { ...message, traceContext },
        headers: traceContext,
      };
    }),
  );
}

/** Exponential backoff with full jitter, capped: the delay before re-send number `attempt` (1-based). */
export function backoffMs(attempt: number, baseMs: number, capMs: number): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}

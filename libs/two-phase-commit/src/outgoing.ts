import { CheckoutMessage, routingKey } from '@shop/contracts';
import { currentTraceContext } from '@shop/messaging';
import type { UnitOfWork } from '@shop/outbox';

/**
 * Sends checkout messages with the unit of work (its outbox: sent if and only if it commits),
 * routed to their recipients. A message without a trace context gets the active one (the
 * request or the handler that sends it), in its envelope and as AMQP headers, so its handler
 * continues the same trace.
 */
export function send(unit: UnitOfWork<unknown>, messages: readonly CheckoutMessage[]): void {
  const active = currentTraceContext();
  unit.send(
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

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

/** Exponential backoff with full jitter, capped: the delay before re-send number `attempt` (1-based). */
export function backoffMs(attempt: number, baseMs: number, capMs: number): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}

/**
 * How long acks take to come back (from the decision to the ack recorded), smoothed like TCP's
 * retransmission timer (RFC 6298): a re-send waits this much beyond its backoff, so acks that are
 * merely queued behind a backlog are not answered with more decisions for the same backlog.
 */
export class AckRoundTrip {
  private smoothed: number | undefined;
  private variation = 0;

  /** A round trip of a decision sent once (Karn: a re-sent one's ack could answer either send). */
  observe(seconds: number): void {
    if (!(seconds >= 0)) return;
    if (this.smoothed === undefined) {
      this.smoothed = seconds;
      this.variation = seconds / 2;
      return;
    }
    this.variation += 0.25 * (Math.abs(this.smoothed - seconds) - this.variation);
    this.smoothed += 0.125 * (seconds - this.smoothed);
  }

  /** The slack to give an unacked decision before re-sending it, in seconds (0 before any ack). */
  get timeoutSeconds(): number {
    return this.smoothed === undefined ? 0 : this.smoothed + 4 * this.variation;
  }
}

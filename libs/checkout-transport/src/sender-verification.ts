import { trace } from '@opentelemetry/api';
import { ALLOWED_SENDERS, CheckoutMessage, parseCheckoutMessage, ServiceName } from '@shop/contracts';
import { addLogContext, Delivery, ForgedMessageError, PoisonMessageError } from '@shop/messaging';

/**
 * Parses and authenticates a delivery for `recipient`. The broker validated the publisher's user
 * id; each service publishes as the broker user named like it, so `sender` must match it and be
 * allowed to send this type (a prepare or decision only from the coordinator, and so on). Once
 * parsed, the checkout's transaction id joins the delivery's log context and span.
 */
export function decodeCheckoutMessage(recipient: ServiceName, content: Buffer, delivery: Delivery): CheckoutMessage {
  let raw: unknown;
  try {
    raw = JSON.parse(content.toString('utf8'));
  } catch {
    throw new PoisonMessageError('body is not JSON');
  }
  const message = parseCheckoutMessage(raw);
  addLogContext({ transactionId: message.transactionId, messageType: message.type });
  trace.getActiveSpan()?.setAttribute('checkout.transaction_id', message.transactionId);
  if (message.recipient !== recipient) {
    throw new PoisonMessageError(`addressed to ${message.recipient}, not ${recipient}`);
  }
  if (!ALLOWED_SENDERS[message.type].includes(message.sender)) {
    throw new ForgedMessageError(`a ${message.type} may not come from ${message.sender}`);
  }
  if (delivery.userId !== message.sender) {
    throw new ForgedMessageError(
      `sender ${message.sender} not verified: published by broker user ${delivery.userId ?? '(none)'}`,
    );
  }
  return message;
}

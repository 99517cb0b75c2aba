import { ALLOWED_SENDERS, CheckoutMessage, parseCheckoutMessage, ServiceName } from '@shop/contracts';
import { addLogContext, Delivery, ForgedMessageError, PoisonMessageError } from '@shop/messaging';

/**
 * Validates (the one schema check of a received message: the edge) and authenticates a message
 * for `recipient`, its body parsed by the consumer. The broker validated the publisher's user
 * id (of a packed delivery: of the pack, so of every message in it); each service publishes as
 * the broker user named like it, so `sender` must match it and be allowed to send this type (a
 * prepare or decision only from the coordinator, and so on). Once parsed, the checkout's
 * transaction id joins the message's log context (and so its span or its batch span's link).
 */
export function decodeCheckoutMessage(recipient: ServiceName, body: unknown, delivery: Delivery): CheckoutMessage {
  const message = parseCheckoutMessage(body);
  addLogContext({ transactionId: message.transactionId, messageType: message.type });
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

import type * as amqp from 'amqplib';

/** What to do with a delivery once its handler returned. Throwing means "retry later". */
export enum Disposition {
  /** Done (or a duplicate): remove it from the queue. The default when a handler returns nothing. */
  Ack = 'ack',
  /** Put it back at once, e.g. while shutting down. */
  Requeue = 'requeue',
  /** It can never succeed: move it to the dead-letter queue now. */
  DeadLetter = 'dead-letter',
}

/** Thrown by a decoder or handler for a message that can never be handled: it goes straight to the dead-letter queue. */
export class PoisonMessageError extends Error {
  override readonly name: string = 'PoisonMessageError';
}

/** Thrown by a decoder for a message whose sender is not who the broker says published it, or may not send it. */
export class ForgedMessageError extends PoisonMessageError {
  override readonly name = 'ForgedMessageError';
}

/** What a decoder and a handler know of a delivery besides its body. */
export interface Delivery {
  routingKey: string;
  /** 1 for the first try, counting retries through the retry queues. */
  attempt: number;
  redelivered: boolean;
  /** Broker-validated user id of the publisher (AMQP `user-id`), when it set one. */
  userId: string | undefined;
  headers: Record<string, unknown>;
}

/** Headers this library writes; a dead-lettered message carries why it was dead-lettered. */
export const HEADERS = {
  attempt: 'x-attempt',
  lastError: 'x-last-error',
  deadLetterReason: 'x-dead-letter-reason',
  deadLetteredAt: 'x-dead-lettered-at',
  originalRoutingKey: 'x-original-routing-key',
  originalExchange: 'x-original-exchange',
} as const;

/**
 * Who first published a message we re-published (retry, dead-letter, re-drive), as the broker
 * validated it; `''` when it validated nobody (the message had no user-id). Believed only on a
 * message published under our own user id: nobody else can publish as us, so nobody else can set it.
 */
export const ORIGINAL_USER_ID = 'x-original-user-id';

/**
 * The broker-validated publisher of a message received by `self` (a broker user): its user-id,
 * unless `self` re-published it, when it is the original publisher `self` recorded (undefined if
 * none was validated).
 */
export function verifiedPublisher(message: amqp.Message, self: string): string | undefined {
  const userId = message.properties.userId as string | undefined;
  const original: unknown = message.properties.headers?.[ORIGINAL_USER_ID];
  if (userId !== self || original === undefined) return userId;
  return typeof original === 'string' && original !== '' ? original : undefined;
}

/**
 * The delivery of `message` to the consumer logged in as `self`: the routing key it was first
 * published with (a retry comes back with another), its attempt, its verified publisher. The
 * first two come from headers only on a message `self` re-published; from anyone else, a
 * delivery is the first attempt of its routing key.
 */
export function deliveryOf(message: amqp.Message, self: string): Delivery {
  const headers = (message.properties.headers ?? {}) as Record<string, unknown>;
  // Our retry headers are believed only on our own re-publishes (the broker validated user-id
  // `self`): anyone else could forge an attempt count that dead-letters on the first failure.
  const ours = message.properties.userId === self;
  const originalRoutingKey = ours ? headers[HEADERS.originalRoutingKey] : undefined;
  return {
    routingKey: typeof originalRoutingKey === 'string' ? originalRoutingKey : message.fields.routingKey,
    attempt: ours ? attemptFrom(headers[HEADERS.attempt]) : 1,
    redelivered: message.fields.redelivered,
    userId: verifiedPublisher(message, self),
    headers,
  };
}

/** The `x-attempt` header as a count from 1; anything but a positive integer (a forged or broken header) is the first. */
function attemptFrom(header: unknown): number {
  const attempt = typeof header === 'number' ? header : typeof header === 'string' ? Number(header) : NaN;
  return Number.isSafeInteger(attempt) && attempt >= 1 ? attempt : 1;
}

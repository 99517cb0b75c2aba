import type * as amqp from 'amqplib';
import type { BatchOutcome } from './batching';
import { Disposition, ForgedMessageError, PoisonMessageError } from './delivery';
import type { BrokerDelivery } from './delivery-tracing';
import { errorMessage } from './logger';
import { isPacked } from './packed-messages';
import { deadLetter, Received, Republishing, requeueAlone, retryOrDeadLetter } from './retry-policy';

/**
 * Why a message was dead-lettered, in a few classes (for metrics): it could not be decoded, its
 * sender was not authentic, or its handler refused it or kept failing.
 */
export type DeadLetterClass = 'invalid' | 'forged' | 'handler-failed';

/** How a delivery ended; reported once it is settled with the broker. */
export interface Settlement<T> {
  /** The decoded message; undefined when it could not be decoded. */
  message: T | undefined;
  outcome: 'handled' | 'retried' | 'dead-lettered' | 'requeued';
  deadLetterClass?: DeadLetterClass;
}

/** Done: its delivery is acked (with the others of its batch that were). */
export function isHandled(outcome: BatchOutcome): boolean {
  return outcome.ok && outcome.value !== Disposition.Requeue && outcome.value !== Disposition.DeadLetter;
}

/**
 * Acks deliveries whose every message was handled, before the others are retried or
 * dead-lettered. When the whole batch was handled, with one `multiple` ack on the live channel
 * (one settle command for the queue instead of one per message): a batch holds the oldest
 * unsettled deliveries of its channel. Otherwise one by one, so that none that must be retried
 * is acked with them.
 */
export function ackHandled(
  handled: ReadonlyArray<BrokerDelivery>,
  wholeBatch: boolean,
  liveChannel: amqp.ConfirmChannel | undefined,
): void {
  const newest = new Map<amqp.ConfirmChannel, amqp.Message>();
  for (const { channel, message } of handled) {
    if (!wholeBatch || channel !== liveChannel) {
      ackIgnoringClosed(channel, message, false);
      continue;
    }
    const kept = newest.get(channel);
    if (!kept || message.fields.deliveryTag > kept.fields.deliveryTag) newest.set(channel, message);
  }
  for (const [channel, message] of newest) ackIgnoringClosed(channel, message, true);
}

/** What became of one message of a batch: its handler's outcome, or why it could not be decoded. */
export type MessageOutcome = { decoded: true; outcome: BatchOutcome } | { decoded: false; error: unknown };

/**
 * Settles one message that was not handled, alone, by its outcome: a failure is retried, or
 * dead-lettered when it is poison or out of attempts; `Requeue` puts it back (a message of a
 * pack alone, re-published: the others of its pack are settled); `DeadLetter` parks it; an
 * undecodable one is dead-lettered at once, as forged or invalid. Resolves once the broker
 * confirmed the re-publish; a refused one throws. Its delivery is acked by the caller, once
 * every message it carries is settled (or, a single `Requeue`, nacked back to the queue).
 */
export async function settleAlone<T>(
  received: Received,
  message: T | undefined,
  result: MessageOutcome,
  to: Republishing,
): Promise<Settlement<T>> {
  if (!result.decoded) {
    const { error } = result;
    await deadLetter(to, received, `invalid message: ${errorMessage(error)}`);
    return {
      message,
      outcome: 'dead-lettered',
      deadLetterClass: error instanceof ForgedMessageError ? 'forged' : 'invalid',
    };
  }
  const { outcome } = result;
  if (!outcome.ok) {
    const err = outcome.error;
    const settled =
      err instanceof PoisonMessageError
        ? await deadLetter(to, received, err.message)
        : await retryOrDeadLetter(to, received, err);
    return { message, outcome: settled, deadLetterClass: settled === 'dead-lettered' ? 'handler-failed' : undefined };
  }
  if (outcome.value === Disposition.Requeue) {
    if (isPacked(received.message)) await requeueAlone(to, received);
    return { message, outcome: 'requeued' };
  }
  await deadLetter(to, received, 'rejected by handler'); // Disposition.DeadLetter
  return { message, outcome: 'dead-lettered', deadLetterClass: 'handler-failed' };
}

/** Acks unless the channel closed under us (broker gone): the broker then redelivers it, and the inbox skips it. */
export function ackIgnoringClosed(channel: amqp.ConfirmChannel, message: amqp.Message, allUpTo: boolean): void {
  try {
    channel.ack(message, allUpTo);
  } catch {
    // closed: nothing to do
  }
}

/** Puts a delivery back on its queue unless the channel closed under us: the broker redelivers it then anyway. */
export function nackIgnoringClosed(channel: amqp.ConfirmChannel, message: amqp.Message): void {
  try {
    channel.nack(message, false, true);
  } catch {
    // closed: the broker redelivers it anyway
  }
}

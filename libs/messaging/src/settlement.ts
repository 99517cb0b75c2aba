import type * as amqp from 'amqplib';
import type { BatchOutcome } from './batching';
import { Disposition, ForgedMessageError, PoisonMessageError } from './delivery';
import { recordError, TracedDelivery } from './delivery-tracing';
import { errorMessage } from './logger';
import { deadLetter, Republishing, retryOrDeadLetter } from './retry-policy';

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
 * Acks the handled deliveries of a batch, before the others are retried or dead-lettered. When
 * the whole batch was handled, with one `multiple` ack on the live channel (one settle command
 * for the queue instead of one per message): a batch holds the oldest unsettled deliveries of
 * its channel. Otherwise one by one, so that none that must be retried is acked with them.
 */
export function ackHandled(
  handled: ReadonlyArray<TracedDelivery>,
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

/**
 * Settles a decoded delivery by its outcome (a handled one is acked already, with its batch): a
 * failure is retried, or dead-lettered when it is poison or out of attempts; `Requeue` puts it
 * back; `DeadLetter` parks it. A re-published delivery is acked only once the broker confirmed
 * the copy; a refused re-publish throws, and the delivery stays unacked.
 */
export async function settle<T>(
  traced: TracedDelivery,
  message: T,
  outcome: BatchOutcome,
  to: Republishing,
): Promise<Settlement<T>> {
  const { channel } = traced;
  if (isHandled(outcome)) return { message, outcome: 'handled' };
  if (!outcome.ok) {
    const err = outcome.error;
    recordError(traced, err);
    const result =
      err instanceof PoisonMessageError
        ? await deadLetter(to, traced, err.message)
        : await retryOrDeadLetter(to, traced, err);
    channel.ack(traced.message);
    return { message, outcome: result, deadLetterClass: result === 'dead-lettered' ? 'handler-failed' : undefined };
  }
  if (outcome.value === Disposition.Requeue) {
    channel.nack(traced.message, false, true);
    return { message, outcome: 'requeued' };
  }
  await deadLetter(to, traced, 'rejected by handler'); // Disposition.DeadLetter
  channel.ack(traced.message);
  return { message, outcome: 'dead-lettered', deadLetterClass: 'handler-failed' };
}

/** Settles a delivery that could not be decoded: dead-lettered at once, as forged or invalid. */
export async function settleUndecodable(
  traced: TracedDelivery,
  err: unknown,
  to: Republishing,
): Promise<Settlement<never>> {
  recordError(traced, err);
  await deadLetter(to, traced, `invalid message: ${errorMessage(err)}`);
  traced.channel.ack(traced.message);
  return {
    message: undefined,
    outcome: 'dead-lettered',
    deadLetterClass: err instanceof ForgedMessageError ? 'forged' : 'invalid',
  };
}

/** Acks unless the channel closed under us (broker gone): the broker then redelivers it, and the inbox skips it. */
function ackIgnoringClosed(channel: amqp.ConfirmChannel, message: amqp.Message, allUpTo: boolean): void {
  try {
    channel.ack(message, allUpTo);
  } catch {
    // closed: nothing to do
  }
}

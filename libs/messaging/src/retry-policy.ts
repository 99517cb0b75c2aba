import type * as amqp from 'amqplib';
import { publishMandatory } from './confirm-publisher';
import { Delivery, HEADERS, ORIGINAL_USER_ID, verifiedPublisher } from './delivery';
import { errorMessage, Logger } from './logger';
import { isPacked, UnpackedMessage } from './packed-messages';
import { redriveKey, retryQueueFor, ServiceTopology } from './topology';

export interface RetryPolicy {
  /** Handler attempts before the message is dead-lettered. */
  maxAttempts: number;
  /**
   * Delay before attempt n+1 is `delaysMs[n-1]` (the last one repeats): whole milliseconds, each
   * one a retry queue of its own (see `retryDelays`).
   */
  delaysMs: readonly number[];
  /**
   * Failures of the infrastructure rather than of the message (database restarting, deadlock):
   * retried after the longest delay (at least 100 ms) without using up an attempt, so an outage
   * dead-letters nothing.
   */
  isTransient?(err: unknown): boolean;
}

export const DEFAULT_RETRY: RetryPolicy = {
  maxAttempts: 5,
  delaysMs: [100, 500, 2_000, 5_000],
};

/** Throws unless the policy can be followed: at least one attempt, at least one delay, each a positive whole number of ms. */
export function checkRetryPolicy(policy: RetryPolicy): void {
  if (!Number.isSafeInteger(policy.maxAttempts) || policy.maxAttempts < 1)
    throw new Error(`retry policy: maxAttempts ${policy.maxAttempts} is not a positive integer`);
  if (policy.delaysMs.length === 0) throw new Error('retry policy: no delaysMs');
  for (const delay of policy.delaysMs)
    if (!Number.isSafeInteger(delay) || delay < 1)
      throw new Error(`retry policy: delay ${delay} is not a positive whole number of milliseconds`);
}

/** How long a transient failure waits: the longest delay, at least 100 ms (an outage is not retried in a tight loop). */
function transientDelayMs(policy: RetryPolicy): number {
  return Math.max(...policy.delaysMs, 100);
}

/** Every delay a retry of this policy can wait, shortest first: the consumer declares a retry queue for each. */
export function retryDelays(policy: RetryPolicy): number[] {
  return [...new Set([...policy.delaysMs, transientDelayMs(policy)])].sort((a, b) => a - b);
}

/** What becomes of a delivery whose handler failed: another attempt after a delay, or the dead-letter queue. */
export type AfterFailure =
  { retry: true; delayMs: number; nextAttempt: number; transient: boolean } | { retry: false; reason: string };

/**
 * Decides after attempt `attempt` failed with `err`: a transient failure is retried after the
 * longest delay and keeps its attempt number; any other one takes its attempt's delay and uses
 * up the attempt, until `maxAttempts` have failed.
 */
export function afterFailure(policy: RetryPolicy, attempt: number, err: unknown): AfterFailure {
  if (policy.isTransient?.(err)) {
    return { retry: true, delayMs: transientDelayMs(policy), nextAttempt: attempt, transient: true };
  }
  if (attempt >= policy.maxAttempts) {
    return { retry: false, reason: `handler failed ${attempt} times: ${errorMessage(err)}` };
  }
  const delayMs = policy.delaysMs[Math.min(attempt - 1, policy.delaysMs.length - 1)];
  return { retry: true, delayMs, nextAttempt: attempt + 1, transient: false };
}

/** What re-publishing a delivery needs: where to (the consumer's topology), as whom (its broker user), its policy. */
export interface Republishing {
  topology: ServiceTopology;
  /** The consumer's broker user: the only user-id the broker lets it stamp. */
  self: string;
  policy: RetryPolicy;
  logger: Logger;
}

/**
 * A message to re-publish alone: the broker delivery that carried it (`message`, on `channel`,
 * whose confirms we wait for), the message itself (`unpacked`: the delivery's body, or one a pack
 * carries) and its own delivery.
 */
export interface Received {
  channel: amqp.ConfirmChannel;
  message: amqp.Message;
  unpacked: UnpackedMessage;
  delivery: Delivery;
}

/**
 * Sends a delivery whose handler failed to the retry queue of its delay (it comes back to the
 * service's queue once that delay has passed), or to the dead-letter queue once its attempts are
 * used up; says which. Resolves once the broker confirmed it.
 */
export async function retryOrDeadLetter(
  to: Republishing,
  received: Received,
  err: unknown,
): Promise<'retried' | 'dead-lettered'> {
  const { delivery } = received;
  const next = afterFailure(to.policy, delivery.attempt, err);
  if (!next.retry) return deadLetter(to, received, next.reason);
  const reason = errorMessage(err);
  to.logger.warn(
    `handler failed (${next.transient ? 'transient' : `attempt ${delivery.attempt}`}), retrying in ${next.delayMs} ms: ${reason}`,
  );
  await republish(to, received, to.topology.retryExchange, retryQueueFor(to.topology, next.delayMs).routingKey, {
    ...delivery.headers,
    [HEADERS.attempt]: next.nextAttempt,
    [HEADERS.lastError]: truncate(reason),
    [HEADERS.originalRoutingKey]: delivery.routingKey,
  });
  return 'retried';
}

/** Moves a delivery to the service's dead-letter queue with the reason. Resolves once the broker confirmed it. */
export async function deadLetter(to: Republishing, received: Received, reason: string): Promise<'dead-lettered'> {
  const { message, delivery } = received;
  to.logger.error(`dead-lettering message ${String(received.unpacked.messageId)}: ${reason}`);
  await republish(to, received, to.topology.deadLetterExchange, to.topology.service, {
    ...delivery.headers,
    [HEADERS.deadLetterReason]: truncate(reason),
    [HEADERS.deadLetteredAt]: new Date().toISOString(),
    [HEADERS.originalRoutingKey]: delivery.routingKey,
    [HEADERS.originalExchange]: message.fields.exchange,
    [HEADERS.attempt]: delivery.attempt,
  });
  return 'dead-lettered';
}

/**
 * Puts one message of a pack back on the service's queue at once, alone, keeping its attempt (a
 * handler's `Requeue`): the pack's other messages are settled already. Resolves once confirmed.
 */
export async function requeueAlone(to: Republishing, received: Received): Promise<'requeued'> {
  const { delivery } = received;
  await republish(to, received, to.topology.retryExchange, redriveKey(to.topology), {
    ...delivery.headers,
    [HEADERS.attempt]: delivery.attempt,
    [HEADERS.originalRoutingKey]: delivery.routingKey,
  });
  return 'requeued';
}

/**
 * Re-publishes a message alone, with its properties and new headers, and waits for the broker's
 * confirm: a packed one goes as a message of its own (its body, id and type from the pack).
 */
function republish(
  to: Republishing,
  { channel, message, unpacked }: Received,
  exchange: string,
  routingKey: string,
  headers: Record<string, unknown>,
): Promise<void> {
  const { properties } = message;
  // The broker only accepts our own user id; the original publisher travels in a header.
  const originalUserId = verifiedPublisher(message, to.self);
  // A re-publish that no queue takes must fail (and the delivery stay unacked), not vanish.
  return publishMandatory(channel, exchange, routingKey, unpacked.content(), {
    persistent: true,
    contentType: isPacked(message) ? 'application/json' : (properties.contentType as string | undefined),
    messageId: unpacked.messageId,
    type: unpacked.type,
    timestamp: properties.timestamp as number | undefined,
    userId: to.self,
    headers: { ...headers, [ORIGINAL_USER_ID]: originalUserId ?? '' },
  });
}

function truncate(text: string): string {
  return text.length > 1_000 ? `${text.slice(0, 997)}...` : text;
}

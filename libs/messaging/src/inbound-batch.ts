import type * as amqp from 'amqplib';
import type { BatchEntry, BatchOutcome } from './batching';
import { Delivery, deliveryOf, PoisonMessageError } from './delivery';
import {
  BatchTrace,
  BrokerDelivery,
  describeBatch,
  endBatchTrace,
  InboundMessage,
  recordError,
  startBatchTrace,
  within,
} from './delivery-tracing';
import { currentLogContext, errorMessage, Logger } from './logger';
import { isPacked, UnpackedMessage, unpack } from './packed-messages';
import type { Republishing } from './retry-policy';
import {
  ackHandled,
  ackIgnoringClosed,
  isHandled,
  MessageOutcome,
  nackIgnoringClosed,
  Settlement,
  settleAlone,
} from './settlement';

/** A consumer's batch, unpacked and decoded: every message, and the decoded ones as the handler gets them. */
export interface InboundBatch<T> {
  deliveries: readonly BrokerDelivery[];
  trace: BatchTrace;
  /** Every message of the batch, in delivery order (a pack's in its order). */
  messages: ReadonlyArray<{ item: InboundMessage; decoded: { ok: true; message: T } | { ok: false; error: unknown } }>;
  /** The decoded messages, for the batch handler. */
  entries: Array<BatchEntry<T>>;
}

/**
 * The messages of a batch of deliveries: each delivery's one, or those it packs (`unpack`), each
 * with a delivery of its own (the broker-validated publisher of the delivery, the headers it
 * was packed with), decoded in its log context under the batch's one span. A delivery over the
 * size bound, not JSON, or a pack without messages is one undecodable message; a packed message
 * that does not decode is undecodable alone.
 */
export function inboundMessages<T>(
  deliveries: readonly BrokerDelivery[],
  options: { self: string; queue: string; maxMessageBytes: number; decode(body: unknown, delivery: Delivery): T },
): InboundBatch<T> {
  const items: Array<{ item: InboundMessage; failure?: unknown }> = [];
  for (const { channel, message } of deliveries) {
    const delivery = deliveryOf(message, options.self);
    let unpacked: UnpackedMessage[];
    try {
      const { length } = message.content;
      if (length > options.maxMessageBytes)
        throw new PoisonMessageError(`body of ${length} bytes is over the ${options.maxMessageBytes}-byte bound`);
      unpacked = unpack(message);
    } catch (failure) {
      items.push({ item: inboundOf(channel, message, delivery, asItIs(message)), failure });
      continue;
    }
    for (const one of unpacked)
      items.push({ item: inboundOf(channel, message, { ...delivery, headers: one.headers }, one) });
  }
  const trace = startBatchTrace(
    items.map(({ item }) => item),
    options.queue,
  );
  const messages = items.map(({ item, failure }) => {
    const { body } = item.unpacked;
    if (failure !== undefined || !body.ok)
      return { item, decoded: { ok: false as const, error: failure ?? (body as { error: unknown }).error } };
    try {
      const message = within(trace, item, () => {
        const decoded = options.decode(body.value, item.delivery);
        Object.assign(item.logFields, currentLogContext()); // what decoding learned (the transaction id)
        return decoded;
      });
      return { item, decoded: { ok: true as const, message } };
    } catch (error) {
      return { item, decoded: { ok: false as const, error } };
    }
  });
  describeBatch(
    trace,
    items.map(({ item }) => item),
  );
  const entries = messages.flatMap(({ item, decoded }) =>
    decoded.ok
      ? [
          {
            message: decoded.message,
            delivery: item.delivery,
            within: <R>(work: () => Promise<R>) => within(trace, item, work),
          },
        ]
      : [],
  );
  return { deliveries, trace, messages, entries };
}

/**
 * Settles a batch once its handler answered (`outcomes`, one per entry): acks every delivery
 * whose messages were all handled (one `multiple` ack when all were), then settles each other
 * message alone (`settleAlone`: retried or dead-lettered, a packed one re-published alone) and
 * acks its delivery once every message it carries is settled; a single delivery the handler
 * asked to requeue is nacked back. Reports each message (`onSettled`), ends the batch's span.
 * Answers the channels of deliveries left unsettled (a re-publish refused): the caller replaces
 * them, so the broker delivers those again.
 */
export async function settleBatch<T>(
  batch: InboundBatch<T>,
  outcomes: readonly BatchOutcome[],
  options: {
    to: Republishing;
    liveChannel: amqp.ConfirmChannel | undefined;
    logger: Logger;
    onSettled?(settlement: Settlement<T>): void;
  },
): Promise<Set<amqp.ConfirmChannel>> {
  const { trace } = batch;
  let entry = 0;
  const results = batch.messages.map(({ item, decoded }) => {
    const result: MessageOutcome = decoded.ok
      ? { decoded: true, outcome: outcomes[entry++] }
      : { decoded: false, error: decoded.error };
    return { item, message: decoded.ok ? decoded.message : undefined, result };
  });
  const handled = (result: MessageOutcome) => result.decoded && isHandled(result.outcome);
  const pending = new Map<amqp.Message, typeof results>();
  for (const one of results) {
    if (handled(one.result)) continue;
    pending.set(one.item.message, [...(pending.get(one.item.message) ?? []), one]);
  }
  const done = batch.deliveries.filter(({ message }) => !pending.has(message));
  ackHandled(done, done.length === batch.deliveries.length, options.liveChannel);
  const unsettled = new Set<amqp.ConfirmChannel>();
  for (const { message, result } of results) {
    if (handled(result)) options.onSettled?.({ message, outcome: 'handled' });
  }
  for (const [delivered, failed] of pending) {
    const { channel } = failed[0].item;
    let settledAll = true;
    let requeue = false;
    for (const { item, message, result } of failed) {
      if (!result.decoded || !result.outcome.ok)
        recordError(trace, item, result.decoded ? errorOf(result.outcome) : result.error);
      try {
        const settlement = await within(trace, item, () => settleAlone(item, message, result, options.to));
        requeue ||= settlement.outcome === 'requeued' && !isPacked(delivered); // a packed one went back alone
        options.onSettled?.(settlement);
      } catch (err) {
        settledAll = false;
        options.logger.warn(`could not settle message ${String(item.unpacked.messageId)}: ${errorMessage(err)}`);
      }
    }
    if (!settledAll) unsettled.add(channel);
    else if (requeue) nackIgnoringClosed(channel, delivered);
    else ackIgnoringClosed(channel, delivered, false);
  }
  const ms = endBatchTrace(trace);
  options.logger.debug?.(
    `settled ${results.length} message(s) of ${batch.deliveries.length} deliveries in ${Math.round(ms)} ms`,
  );
  return unsettled;
}

function inboundOf(
  channel: amqp.ConfirmChannel,
  message: amqp.Message,
  delivery: Delivery,
  unpacked: UnpackedMessage,
): InboundMessage {
  return {
    channel,
    message,
    delivery,
    unpacked,
    logFields: { messageId: unpacked.messageId, messageType: unpacked.type },
  };
}

/** A delivery that cannot be unpacked, as one message: re-published (dead-lettered) as it came. */
function asItIs(message: amqp.Message): UnpackedMessage {
  return {
    messageId: message.properties.messageId as string | undefined,
    type: message.properties.type as string | undefined,
    headers: message.properties.headers ?? {},
    body: { ok: false, error: new PoisonMessageError('not unpacked') },
    content: () => message.content,
  };
}

function errorOf(outcome: BatchOutcome): unknown {
  return outcome.ok ? undefined : outcome.error;
}

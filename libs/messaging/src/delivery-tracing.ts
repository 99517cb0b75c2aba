import { Attributes, context, Context, ROOT_CONTEXT, Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type * as amqp from 'amqplib';
import type { Delivery } from './delivery';
import { LogContext, withLogContext } from './logger';
import type { UnpackedMessage } from './packed-messages';
import { linksTo, traceContextFrom } from './trace-context';

const tracer = trace.getTracer('@shop/messaging');

/** A broker delivery: the channel it came on (where it is acked) and the message. */
export interface BrokerDelivery {
  channel: amqp.ConfirmChannel;
  message: amqp.Message;
}

/**
 * One message on its way through the consumer: a delivery, or one message a packed delivery
 * carries (`unpacked`), with a delivery of its own (its headers, its trace) and its log fields.
 */
export interface InboundMessage extends BrokerDelivery {
  unpacked: UnpackedMessage;
  delivery: Delivery;
  /** What log lines about it carry; decoding adds the transaction id. */
  logFields: LogContext;
}

/**
 * The one span of a batch. A batch of one message is a child of the trace that message carries
 * (so a checkout alone is one trace across services); a larger batch links to each message's
 * trace (OpenTelemetry's batch-processing convention) instead of being any one's child.
 */
export interface BatchTrace {
  span: Span;
  /** The context work of the batch runs in: the span, under its parent. */
  active: Context;
  started: number;
}

export function startBatchTrace(batch: readonly InboundMessage[], queue: string): BatchTrace {
  const started = performance.now();
  const common = {
    'messaging.system': 'rabbitmq',
    'messaging.operation.type': 'process',
    'messaging.destination.name': queue,
  };
  if (batch.length === 1) {
    const [{ delivery, unpacked }] = batch;
    const parent = traceContextFrom(delivery.headers);
    const span = tracer.startSpan(
      `process ${delivery.routingKey}`,
      {
        kind: SpanKind.CONSUMER,
        attributes: {
          ...common,
          'messaging.rabbitmq.destination.routing_key': delivery.routingKey,
          'messaging.message.id': unpacked.messageId ?? '',
          'messaging.rabbitmq.attempt': delivery.attempt,
        },
      },
      parent,
    );
    return { span, active: trace.setSpan(parent, span), started };
  }
  const span = tracer.startSpan(
    `process ${queue}`,
    { kind: SpanKind.CONSUMER, attributes: { ...common, 'messaging.batch.message_count': batch.length } },
    ROOT_CONTEXT,
  );
  return { span, active: trace.setSpan(ROOT_CONTEXT, span), started };
}

/**
 * Once the batch is decoded: the transaction each message belongs to, on the span of a batch of
 * one, or on each message's link. Nothing is computed when the span is not recorded.
 */
export function describeBatch(batchTrace: BatchTrace, batch: readonly InboundMessage[]): void {
  const { span } = batchTrace;
  if (!span.isRecording()) return;
  const attributesOf = (item: InboundMessage): Attributes => ({
    'messaging.message.id': item.unpacked.messageId ?? '',
    ...(item.logFields.transactionId ? { 'checkout.transaction_id': item.logFields.transactionId } : {}),
  });
  if (batch.length === 1) return void span.setAttributes(attributesOf(batch[0]));
  span.addLinks(
    linksTo(
      batch.map((item) => item.delivery.headers),
      (index) => attributesOf(batch[index]),
    ),
  );
}

/** Runs `work` in the batch's span and the message's log context. */
export function within<R>(batchTrace: BatchTrace, item: InboundMessage, work: () => R): R {
  return context.with(batchTrace.active, () => withLogContext(item.logFields, work));
}

/** Records on the batch's span what a message failed with, naming the message. */
export function recordError(batchTrace: BatchTrace, item: InboundMessage, err: unknown): void {
  batchTrace.span.recordException(err instanceof Error ? err : String(err));
  batchTrace.span.setStatus({
    code: SpanStatusCode.ERROR,
    message: `message ${item.unpacked.messageId ?? '?'} not handled`,
  });
}

/** Ends the batch's span; says how long the batch took (ms). */
export function endBatchTrace(batchTrace: BatchTrace): number {
  batchTrace.span.end();
  return performance.now() - batchTrace.started;
}

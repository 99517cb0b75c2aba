import { context, Context, Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type * as amqp from 'amqplib';
import type { Delivery } from './delivery';
import { errorMessage, LogContext, Logger, withLogContext } from './logger';
import type { Settlement } from './settlement';
import { traceContextFrom } from './trace-context';

const tracer = trace.getTracer('@shop/messaging');

/** A delivery on its way through the consumer: where it came from, its span and log fields. */
export interface TracedDelivery {
  channel: amqp.ConfirmChannel;
  message: amqp.Message;
  delivery: Delivery;
  span: Span;
  /** The trace context the message carried: the span's parent. */
  parent: Context;
  /** What log lines about it carry; decoding adds the transaction id. */
  logFields: LogContext;
  started: number;
}

/**
 * Starts a delivery's span, parented by the trace context it carries (so a checkout is one trace
 * across services), and its log context naming the message.
 */
export function startTracing(
  channel: amqp.ConfirmChannel,
  message: amqp.Message,
  delivery: Delivery,
  queue: string,
): TracedDelivery {
  const messageId = message.properties.messageId as string | undefined;
  const parent = traceContextFrom(delivery.headers);
  const span = tracer.startSpan(
    `process ${delivery.routingKey}`,
    {
      kind: SpanKind.CONSUMER,
      attributes: {
        'messaging.system': 'rabbitmq',
        'messaging.operation.type': 'process',
        'messaging.destination.name': queue,
        'messaging.rabbitmq.destination.routing_key': delivery.routingKey,
        'messaging.message.id': messageId ?? '',
        'messaging.rabbitmq.attempt': delivery.attempt,
      },
    },
    parent,
  );
  const logFields = { messageId, messageType: message.properties.type as string | undefined };
  return { channel, message, delivery, span, parent, logFields, started: performance.now() };
}

/** Runs `work` in the delivery's span and log context. */
export function within<R>(traced: TracedDelivery, work: () => R): R {
  return context.with(trace.setSpan(traced.parent, traced.span), () => withLogContext(traced.logFields, work));
}

/**
 * Settles a delivery with the broker (`settle`) in its span, reports how it ended and ends the
 * span. Says whether it was settled: when `settle` failed (a re-publish refused, the channel
 * closed under it) the delivery is still unacked, and the caller must have it redelivered.
 */
export async function settleTraced<T>(
  traced: TracedDelivery,
  settle: () => Promise<Settlement<T>>,
  report: { logger: Logger; onSettled?(settlement: Settlement<T>): void },
): Promise<boolean> {
  const { span, delivery } = traced;
  return within(traced, async () => {
    try {
      const settlement = await settle();
      if (settlement.outcome !== 'handled') {
        span.setStatus({ code: SpanStatusCode.ERROR, message: settlement.deadLetterClass ?? settlement.outcome });
      }
      report.logger.debug?.(
        `${settlement.outcome} ${delivery.routingKey} in ${Math.round(performance.now() - traced.started)} ms`,
      );
      report.onSettled?.(settlement);
      return true;
    } catch (err) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: 'not settled' });
      report.logger.warn(
        `could not settle message ${String(traced.message.properties.messageId)}: ${errorMessage(err)}`,
      );
      return false;
    } finally {
      span.end();
    }
  });
}

/** Records a handler's or decoder's error on the delivery's span. */
export function recordError(traced: TracedDelivery, err: unknown): void {
  traced.span.recordException(err instanceof Error ? err : String(err));
}

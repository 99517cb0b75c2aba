import { Attributes, context, Context, Link, propagation, ROOT_CONTEXT, trace } from '@opentelemetry/api';

/**
 * The active trace context as W3C headers (`traceparent`, `tracestate`): what an outgoing message
 * carries so its handler joins the same trace. Empty when nothing is traced (no SDK registered).
 */
export function currentTraceContext(): Record<string, string> {
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return carrier;
}

/** The headers a trace context travels in (W3C trace context and baggage): no other header is read. */
const TRACE_HEADERS = ['traceparent', 'tracestate', 'baggage'] as const;
/**
 * A longer trace header is ignored: W3C bounds `tracestate` at 32 entries (~512 characters) and
 * `baggage` at 8192 bytes; a publisher cannot make every handling span parse and carry more.
 */
export const MAX_TRACE_HEADER_CHARS = 8192;

/** The trace context a message carries in its headers, to parent the span that handles it; bounded. */
export function traceContextFrom(headers: Record<string, unknown>): Context {
  return propagation.extract(ROOT_CONTEXT, headers, {
    keys: () => [...TRACE_HEADERS],
    get: (carrier, key) => {
      if (!(TRACE_HEADERS as readonly string[]).includes(key)) return undefined;
      const value = carrier[key];
      const text = typeof value === 'string' ? value : Buffer.isBuffer(value) ? value.toString('utf8') : undefined;
      return text !== undefined && text.length <= MAX_TRACE_HEADER_CHARS ? text : undefined;
    },
  });
}

/**
 * Span links to the traces that messages carry (in their headers), one per message that carries
 * one: a span for a batch of messages follows each message's trace without being any one's child.
 */
export function linksTo(
  headersOfEach: ReadonlyArray<Record<string, unknown>>,
  attributes?: (index: number) => Attributes,
): Link[] {
  const links: Link[] = [];
  headersOfEach.forEach((headers, index) => {
    const spanContext = trace.getSpanContext(traceContextFrom(headers));
    if (spanContext && trace.isSpanContextValid(spanContext))
      links.push({ context: spanContext, attributes: attributes?.(index) });
  });
  return links;
}

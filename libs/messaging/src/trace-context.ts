import { context, Context, propagation, ROOT_CONTEXT } from '@opentelemetry/api';

/**
 * The active trace context as W3C headers (`traceparent`, `tracestate`): what an outgoing message
 * carries so its handler joins the same trace. Empty when nothing is traced (no SDK registered).
 */
export function currentTraceContext(): Record<string, string> {
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return carrier;
}

/** The trace context a message carries in its headers, to parent the span that handles it. */
export function traceContextFrom(headers: Record<string, unknown>): Context {
  return propagation.extract(ROOT_CONTEXT, headers, {
    keys: (carrier) => Object.keys(carrier),
    get: (carrier, key) => {
      const value = carrier[key];
      return typeof value === 'string' ? value : Buffer.isBuffer(value) ? value.toString('utf8') : undefined;
    },
  });
}

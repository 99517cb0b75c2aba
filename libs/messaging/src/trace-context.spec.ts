import { propagation, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { MAX_TRACE_HEADER_CHARS, traceContextFrom } from './trace-context';

const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

describe('traceContextFrom', () => {
  beforeAll(() => propagation.setGlobalPropagator(new W3CTraceContextPropagator()));
  afterAll(() => propagation.disable());

  it('parents the handling span on the traceparent header', () => {
    expect(trace.getSpanContext(traceContextFrom({ traceparent }))?.traceId).toBe('0af7651916cd43dd8448eb211c80319c');
  });

  it('reads the W3C headers only, and ignores one longer than the bound', () => {
    const keysRead: string[] = [];
    const headers = new Proxy<Record<string, unknown>>(
      { traceparent, tracestate: `a=${'x'.repeat(MAX_TRACE_HEADER_CHARS)}`, 'x-other': 'y' },
      {
        get: (target, key: string) => {
          keysRead.push(key);
          return target[key];
        },
      },
    );
    const context = traceContextFrom(headers);
    expect(trace.getSpanContext(context)?.traceState).toBeUndefined();
    expect(keysRead).not.toContain('x-other');
  });
});

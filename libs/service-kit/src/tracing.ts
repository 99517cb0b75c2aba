/**
 * OpenTelemetry tracing for a service, in two steps: `instrument()` before anything else is
 * loaded (each app's main.ts imports ./instrument first: http and pg are patched only if they
 * load after it), then `startTracing()` in the bootstrap, once the service's name and validated
 * config are known.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { context, isValidTraceId, propagation, ROOT_CONTEXT, trace, TraceFlags } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ParentBasedSampler,
  type Sampler,
  type SpanExporter,
  TraceIdRatioBasedSampler,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import { ATTR_HTTP_ROUTE, ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';

const NOT_TRACED = /^\/(health|metrics)(\/|\?|$)/;

/**
 * Registers the async context (the active span follows awaits), W3C trace context propagation
 * (traceparent/tracestate: what HTTP headers and the messages' traceContext carry), and, when
 * spans are exported, the instrumentation of http (a span per request) and pg (a span per query).
 * Unexported, those spans would only cost CPU on the hot path (60–260 µs per request for http's):
 * `continueRequestTrace` gives a request its trace context instead.
 */
export function instrument(exported = isExported(process.env)): void {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  if (!exported) return;
  registerInstrumentations({
    instrumentations: [
      new HttpInstrumentation({
        ignoreIncomingRequestHook: (request) => NOT_TRACED.test(request.url ?? ''),
        // Nest loads express as an ES module, out of reach of its instrumentation; but express has
        // matched the route when the span ends: name the span after it ("GET /orders/:id").
        applyCustomAttributesOnSpan: (span, request) => {
          const route = (request as { route?: { path?: unknown } }).route?.path;
          if (typeof route !== 'string') return;
          span.setAttribute(ATTR_HTTP_ROUTE, route);
          span.updateName(`${request.method ?? 'GET'} ${route}`);
        },
      }),
      // Queries inside a request or a message handler; not the relay's and sweepers' polling.
      new PgInstrumentation({ requireParentSpan: true }),
    ],
  });
}

/** Whether spans are exported (OTEL_EXPORTER_OTLP_ENDPOINT set): what `instrument` and the bootstrap decide by. */
export const isExported = (config: { OTEL_EXPORTER_OTLP_ENDPOINT?: string }) =>
  Boolean(config.OTEL_EXPORTER_OTLP_ENDPOINT);

/**
 * Express middleware for when spans are not exported (no http instrumentation): runs the request
 * in a trace context of its own, continuing the caller's `traceparent` or starting a new trace,
 * so trace ids still reach its log lines and every message it sends. Nothing is recorded.
 */
export function continueRequestTrace(request: IncomingMessage, response: ServerResponse, next: () => void): void {
  const parent = propagation.extract(ROOT_CONTEXT, request.headers);
  const callers = trace.getSpanContext(parent)?.traceId;
  const active = trace.setSpanContext(parent, {
    traceId: callers && isValidTraceId(callers) ? callers : randomBytes(16).toString('hex'),
    spanId: randomBytes(8).toString('hex'),
    traceFlags: TraceFlags.NONE,
  });
  // The body's and the response's events run in it too (the request log's line, the body parser).
  context.bind(active, request);
  context.bind(active, response);
  context.with(active, next);
}

let provider: TracerProvider | undefined;

/**
 * The sampler the standard OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG settings name (the SDK's
 * TracerProvider no longer reads them itself); parent-based, always on by default.
 */
export function samplerFromEnv(env: NodeJS.ProcessEnv = process.env): Sampler {
  const parsed = Number.parseFloat(env.OTEL_TRACES_SAMPLER_ARG ?? '');
  const ratio = new TraceIdRatioBasedSampler(Number.isFinite(parsed) && parsed >= 0 && parsed <= 1 ? parsed : 1);
  const samplers: Record<string, () => Sampler> = {
    always_on: () => new AlwaysOnSampler(),
    always_off: () => new AlwaysOffSampler(),
    traceidratio: () => ratio,
    parentbased_always_on: () => new ParentBasedSampler({ root: new AlwaysOnSampler() }),
    parentbased_always_off: () => new ParentBasedSampler({ root: new AlwaysOffSampler() }),
    parentbased_traceidratio: () => new ParentBasedSampler({ root: ratio }),
  };
  const name = env.OTEL_TRACES_SAMPLER?.trim().toLowerCase() || 'parentbased_always_on';
  return (samplers[name] ?? samplers.parentbased_always_on)();
}

/**
 * Starts the tracer provider. Spans are exported over OTLP/HTTP only when
 * OTEL_EXPORTER_OTLP_ENDPOINT is set (or an exporter is given, in tests). Without an exporter
 * nothing is recorded, but spans still get ids, so trace ids reach the logs and the next service.
 */
export function startTracing(
  service: string,
  config: { OTEL_EXPORTER_OTLP_ENDPOINT?: string },
  exporter?: SpanExporter,
): TracerProvider {
  if (provider) return provider;
  const endpoint = config.OTEL_EXPORTER_OTLP_ENDPOINT?.replace(/\/+$/, '');
  const spanExporter = exporter ?? (endpoint ? new OTLPTraceExporter({ url: `${endpoint}/v1/traces` }) : undefined);
  provider = new TracerProvider({
    resource: defaultResource().merge(resourceFromAttributes({ [ATTR_SERVICE_NAME]: service })),
    ...(spanExporter
      ? { spanProcessors: [new BatchSpanProcessor({ exporter: spanExporter })], sampler: samplerFromEnv() }
      : { sampler: new AlwaysOffSampler() }),
  });
  trace.setGlobalTracerProvider(provider);
  return provider;
}

/** Exports what is still buffered and stops; on shutdown. */
export async function stopTracing(): Promise<void> {
  await provider?.shutdown();
}

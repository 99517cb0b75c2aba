/**
 * OpenTelemetry tracing for a service, in two steps: `instrument()` before anything else is
 * loaded (each app's main.ts imports ./instrument first: http and pg are patched only if they
 * load after it), then `startTracing()` in the bootstrap, once the service's name and validated
 * config are known.
 */
import { context, propagation, trace } from '@opentelemetry/api';
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
 * (traceparent/tracestate: what HTTP headers and the messages' traceContext carry), and the
 * instrumentation of http (a span per request) and, when spans are exported, pg (a span per
 * query: unexported, they would only cost CPU on every statement of the hot path).
 */
export function instrument(exported = Boolean(process.env.OTEL_EXPORTER_OTLP_ENDPOINT)): void {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
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
      ...(exported ? [new PgInstrumentation({ requireParentSpan: true })] : []),
    ],
  });
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

import { z } from 'zod';
import { httpUrl, unsetIfEmpty } from './setting-schemas';

/** The service's logs and traces. */
export const ObservabilityConfig = z.object({
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** One JSON object per line, or readable lines for a person; unset: readable only on a terminal. */
  LOG_FORMAT: unsetIfEmpty(z.enum(['json', 'pretty']).optional()),
  /** OTLP/HTTP collector (e.g. http://collector:4318); spans are exported only when it is set. */
  OTEL_EXPORTER_OTLP_ENDPOINT: unsetIfEmpty(httpUrl().optional()),
});
export type ObservabilityConfig = z.infer<typeof ObservabilityConfig>;

import { z } from 'zod';
import type { DeploymentConfig } from './deployment.config';
import { unsetIfEmpty } from './setting-schemas';

const port = () => z.coerce.number().int().min(1).max(65535);

/** Where the service listens, and what it serves besides its API. */
export const HttpConfig = z.object({
  PORT: port(),
  /**
   * A second port for /health/*, /metrics and /docs (operators, probes, Prometheus), so the main
   * port, the one exposed to clients, does not serve them. Unset: everything on PORT.
   */
  MANAGEMENT_PORT: unsetIfEmpty(port().optional()),
  /** OpenAPI at /docs; unset: on, except with NODE_ENV=production. */
  ENABLE_DOCS: unsetIfEmpty(
    z
      .enum(['true', 'false'])
      .optional()
      .transform((value) => (value === undefined ? undefined : value === 'true')),
  ),
});
export type HttpConfig = z.infer<typeof HttpConfig>;

/** Whether the service serves its OpenAPI document at /docs (see ENABLE_DOCS). */
export const docsEnabled = (config: HttpConfig & DeploymentConfig): boolean =>
  config.ENABLE_DOCS ?? config.NODE_ENV !== 'production';

/** The management port is a port of its own. */
export function httpConfigProblems(config: HttpConfig): string[] {
  return config.MANAGEMENT_PORT === config.PORT
    ? [`  MANAGEMENT_PORT: ${config.MANAGEMENT_PORT} is PORT too; give it another port, or leave it unset`]
    : [];
}

import { z } from 'zod';
import type { DeploymentConfig } from './deployment.config';
import { unsetIfEmpty } from './setting-schemas';

const port = () => z.coerce.number().int().min(1).max(65535);

/** Where the service listens, and what it serves besides its API. */
export const HttpConfig = z.object({
  PORT: port(),
  /**
   * The port of /health/* and /metrics (probes, Prometheus: see `ManagementServer`); PORT, the one
   * exposed to clients, never serves them. Unset: PORT + MANAGEMENT_PORT_OFFSET (3000: 9100).
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

/** MANAGEMENT_PORT's default is PORT plus this (scripts/lib/config.mjs derives the stack's the same way). */
export const MANAGEMENT_PORT_OFFSET = 6100;

/** Where health and metrics are served (see MANAGEMENT_PORT). */
export const managementPortOf = (config: HttpConfig): number =>
  config.MANAGEMENT_PORT ?? config.PORT + MANAGEMENT_PORT_OFFSET;

/** The management port is a port of its own. */
export function httpConfigProblems(config: HttpConfig): string[] {
  const management = managementPortOf(config);
  if (management === config.PORT) return [`  MANAGEMENT_PORT: ${management} is PORT too; give it another port`];
  if (management > 65535) {
    return [`  MANAGEMENT_PORT: unset, so PORT + ${MANAGEMENT_PORT_OFFSET} = ${management}, past 65535; set it`];
  }
  return [];
}

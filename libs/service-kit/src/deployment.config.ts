import { z } from 'zod';
import { flag, parsedUrl } from './setting-schemas';

/** What kind of setup runs the service: the switches that the other settings' checks read. */
export const DeploymentConfig = z.object({
  /**
   * Unset means production: development (no secrets checked, `POST /dev/tokens`, the development
   * admin token) must be asked for. `npm start` sets `development`, the test harness `test`.
   */
  NODE_ENV: z.enum(['development', 'test', 'production']).default('production'),
  /**
   * A production build on a development setup (the compose demo, the benchmark), whose servers
   * only know the development passwords: development secrets are then accepted in production.
   * Never set it in a deployment.
   */
  ALLOW_DEVELOPMENT_SECRETS: flag('false'),
  /** Every connection to the database and the broker must use TLS (checked at boot against the URLs). */
  REQUIRE_TLS: flag('false'),
});
export type DeploymentConfig = z.infer<typeof DeploymentConfig>;

/** In production, development defaults are refused: secrets must be given (unless ALLOW_DEVELOPMENT_SECRETS). */
export const refusesDevelopmentSecrets = (config: DeploymentConfig): boolean =>
  config.NODE_ENV === 'production' && !config.ALLOW_DEVELOPMENT_SECRETS;

/**
 * The local servers' passwords this repository ships (scripts/lib/config.mjs, docker-compose.yml,
 * docker/): each role's and broker user's `<name>_dev_password`, the superusers' `postgres` and
 * `admin`, and RabbitMQ's built-in `guest`.
 */
const isDevelopmentPassword = (password: string) =>
  /(^|_)dev_password$/.test(password) || ['postgres', 'admin', 'guest'].includes(password);

/** Whether a connection URL carries a development password (in its user info or as `?password=`). */
export function hasDevelopmentPassword(url: string): boolean {
  const parsed = parsedUrl(url);
  if (!parsed) return false;
  const passwords = [decodeURIComponent(parsed.password), parsed.searchParams.get('password') ?? ''];
  return passwords.filter(Boolean).some(isDevelopmentPassword);
}

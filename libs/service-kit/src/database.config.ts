import { z } from 'zod';
import { type DeploymentConfig, hasDevelopmentPassword, refusesDevelopmentSecrets } from './deployment.config';
import { DEFAULT_SESSION_LIMITS } from './session-limits';
import { flag, parsedUrl, postgresUrl, unsetIfEmpty } from './setting-schemas';

/** The service's Postgres: where, as whom, and how its pool is shared. */
export const DatabaseConfig = z.object({
  DATABASE_URL: postgresUrl(),
  /**
   * The migrations' connection: a role that owns the service's schema (it creates and changes the
   * tables), while DATABASE_URL's role may only read and write rows. Only the migration step needs
   * it; unset: the migrations run as DATABASE_URL's role.
   */
  MIGRATION_DATABASE_URL: unsetIfEmpty(postgresUrl().optional()),
  /** Postgres connections per process, shared as below (see BACKGROUND_CONNECTIONS). */
  DB_POOL_SIZE: z.coerce.number().int().min(2).max(200).default(20),
  /** Named (server-side prepared) statements; `false` behind a pooler that does not keep them. */
  DB_PREPARED_STATEMENTS: flag('true'),
  /**
   * At most this many of the pool's connections serve HTTP requests at once; the rest stay for
   * message handlers (votes, acks, decisions), so a flood of requests never starves the protocol.
   */
  DB_REQUEST_CONNECTIONS: z.coerce.number().int().min(1).max(200).default(5),
  /**
   * What one database session may hold up (see `SessionLimits`), so a stuck process cannot keep
   * row locks for ever: a statement's run time, a transaction's idle time, a lock wait (all in
   * ms; 0: not set, the server's own default applies), and when TCP keepalives start.
   */
  DB_STATEMENT_TIMEOUT_MS: z.coerce.number().int().min(0).default(DEFAULT_SESSION_LIMITS.statementTimeoutMs),
  DB_IDLE_IN_TRANSACTION_TIMEOUT_MS: z.coerce
    .number()
    .int()
    .min(0)
    .default(DEFAULT_SESSION_LIMITS.idleInTransactionTimeoutMs),
  DB_LOCK_TIMEOUT_MS: z.coerce.number().int().min(0).default(DEFAULT_SESSION_LIMITS.lockTimeoutMs),
  DB_KEEPALIVE_INITIAL_DELAY_MS: z.coerce
    .number()
    .int()
    .min(1_000)
    .default(DEFAULT_SESSION_LIMITS.keepAliveInitialDelayMs),
});
export type DatabaseConfig = z.infer<typeof DatabaseConfig>;

/** The URL the migrations connect with: the migration role's, or DATABASE_URL's if none is given. */
export const migrationDatabaseUrl = (config: DatabaseConfig): string =>
  config.MIGRATION_DATABASE_URL ?? config.DATABASE_URL;

/** Connections the background work may hold at once: the outbox relay, a sweeper, a prune. */
export const BACKGROUND_CONNECTIONS = 3;

/** Postgres URL modes that refuse a connection without TLS. */
const TLS_SSLMODES = ['require', 'verify-ca', 'verify-full'];

/**
 * In production, no development password; with REQUIRE_TLS, only URLs whose sslmode refuses a
 * plain connection. The message handlers get a connection of their own beside the requests'
 * share and the background work, or votes and acks would wait for one behind HTTP requests.
 */
export function databaseConfigProblems(config: DeploymentConfig & DatabaseConfig): string[] {
  const problems: string[] = [];
  const urls = { DATABASE_URL: config.DATABASE_URL, MIGRATION_DATABASE_URL: config.MIGRATION_DATABASE_URL };
  for (const [setting, url] of Object.entries(urls)) {
    if (url !== undefined && refusesDevelopmentSecrets(config) && hasDevelopmentPassword(url)) {
      problems.push(`  ${setting}: its password is a development default; give the production one`);
    }
  }
  for (const [setting, url] of Object.entries(urls)) {
    const sslmode = url === undefined ? undefined : (parsedUrl(url)?.searchParams.get('sslmode') ?? '');
    if (config.REQUIRE_TLS && sslmode !== undefined && !TLS_SSLMODES.includes(sslmode)) {
      problems.push(`  ${setting}: REQUIRE_TLS is set: add sslmode=require, verify-ca or verify-full`);
    }
  }
  const handlersShare = config.DB_POOL_SIZE - config.DB_REQUEST_CONNECTIONS - BACKGROUND_CONNECTIONS;
  if (handlersShare < 1) {
    problems.push(
      `  DB_REQUEST_CONNECTIONS: ${config.DB_REQUEST_CONNECTIONS} leaves the message handlers no connection ` +
        `(DB_POOL_SIZE ${config.DB_POOL_SIZE} - DB_REQUEST_CONNECTIONS - ${BACKGROUND_CONNECTIONS} for the relay, ` +
        `sweeper and pruning must be at least 1)`,
    );
  }
  return problems;
}

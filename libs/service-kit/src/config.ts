import { z } from 'zod';
import { parseBrokerUrls } from '@shop/messaging';
import { DEFAULT_SESSION_LIMITS, SessionLimits } from './data-source';

/** The admin token of local development (and the tests); refused in production. */
export const DEVELOPMENT_ADMIN_TOKEN = 'dev-admin-token';

/** `NAME=` in an env file means "not set", not an empty value. */
export const unsetIfEmpty = <T extends z.ZodType>(schema: T) =>
  z.preprocess((value) => (value === '' ? undefined : value), schema);

/** Settings every service reads from its environment. Services extend this schema with their own. */
export const BaseConfig = z.object({
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  /**
   * Bearer tokens for admin routes, comma-separated: any of them is accepted, so a new one can be
   * rolled out before the old one is removed. The default is for local development only.
   */
  ADMIN_TOKEN: z
    .string()
    .default(DEVELOPMENT_ADMIN_TOKEN)
    .transform((list) => list.split(',').map((token) => token.trim()))
    .pipe(z.array(z.string().min(12, 'each token at least 12 characters')).min(1)),
  /**
   * A production build on a development setup (the compose demo, the benchmark), whose servers
   * only know the development passwords: development secrets are then accepted in production.
   * Never set it in a deployment.
   */
  ALLOW_DEVELOPMENT_SECRETS: z
    .enum(['true', 'false'])
    .default('false')
    .transform((value) => value === 'true'),
  /** Every connection to the database and the broker must use TLS (checked at boot against the URLs). */
  REQUIRE_TLS: z
    .enum(['true', 'false'])
    .default('false')
    .transform((value) => value === 'true'),
  PORT: z.coerce.number().int().min(1).max(65535),
  /**
   * A second port for /health/*, /metrics and /docs (operators, probes, Prometheus), so the main
   * port, the one exposed to clients, does not serve them. Unset: everything on PORT.
   */
  MANAGEMENT_PORT: unsetIfEmpty(z.coerce.number().int().min(1).max(65535).optional()),
  /** OpenAPI at /docs; unset: on, except with NODE_ENV=production. */
  ENABLE_DOCS: unsetIfEmpty(
    z
      .enum(['true', 'false'])
      .optional()
      .transform((value) => (value === undefined ? undefined : value === 'true')),
  ),
  DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, 'a postgres:// URL'),
  /**
   * The migrations' connection: a role that owns the service's schema (it creates and changes the
   * tables), while DATABASE_URL's role may only read and write rows. Only the migration step needs
   * it; unset: the migrations run as DATABASE_URL's role.
   */
  MIGRATION_DATABASE_URL: unsetIfEmpty(
    z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'a postgres:// URL')
      .optional(),
  ),
  /** The broker: one amqp(s):// URL, or the nodes of a cluster comma-separated (tried in order, failed over). */
  AMQP_URL: z
    .string()
    .transform(parseBrokerUrls)
    .pipe(
      z.array(z.string().regex(/^amqps?:\/\//, 'amqp:// or amqps:// URLs, comma-separated')).min(1, 'at least one URL'),
    ),
  /** Postgres connections per process, shared as below (see BACKGROUND_CONNECTIONS). */
  DB_POOL_SIZE: z.coerce.number().int().min(2).max(200).default(20),
  /** Named (server-side prepared) statements; `false` behind a pooler that does not keep them. */
  DB_PREPARED_STATEMENTS: z
    .enum(['true', 'false'])
    .default('true')
    .transform((value) => value === 'true'),
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
  /** Unacked deliveries per consumer: the batch in hand and the next one gathering. */
  AMQP_PREFETCH: z.coerce.number().int().min(1).max(1000).default(100),
  /** At most this many messages are handled in one database transaction (see `inOneTransaction`). */
  MESSAGE_BATCH_SIZE: z.coerce.number().int().min(1).max(1000).default(50),
  /** Handler attempts before a failing message is dead-lettered. */
  MESSAGE_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(50).default(5),
  OUTBOX_POLL_INTERVAL_MS: z.coerce.number().int().min(10).default(1000),
  OUTBOX_RETENTION_HOURS: z.coerce.number().min(0).default(24),
  INBOX_RETENTION_HOURS: z.coerce
    .number()
    .min(0)
    .default(7 * 24),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** One JSON object per line, or readable lines for a person; unset: readable only on a terminal. */
  LOG_FORMAT: unsetIfEmpty(z.enum(['json', 'pretty']).optional()),
  /** OTLP/HTTP collector (e.g. http://collector:4318); spans are exported only when it is set. */
  OTEL_EXPORTER_OTLP_ENDPOINT: unsetIfEmpty(z.url({ protocol: /^https?$/, error: 'an http(s):// URL' }).optional()),
});
export type BaseConfig = z.infer<typeof BaseConfig>;

/** The URL the migrations connect with: the migration role's, or DATABASE_URL's if none is given. */
export const migrationDatabaseUrl = (config: BaseConfig): string =>
  config.MIGRATION_DATABASE_URL ?? config.DATABASE_URL;

/**
 * Signature algorithms a customer token may use: asymmetric only, so a service that verifies
 * tokens cannot sign one (`none` and the HMAC family are refused whatever the setting says).
 */
export const JWT_ALGORITHMS = [
  'EdDSA',
  'Ed25519',
  'ES256',
  'ES384',
  'ES512',
  'PS256',
  'PS384',
  'PS512',
  'RS256',
] as const;

/**
 * Customer tokens (JWT, `Authorization: Bearer`), for services with customer routes: they extend
 * their schema with this one. Unset issuer, audience and key set mean the development ones
 * (libs/service-kit/src/auth/development-jwt-key.json), refused in production.
 */
export const CustomerAuthConfig = z.object({
  /** The identity provider's JSON Web Key Set (its signing keys, fetched and cached). Required in production. */
  JWT_JWKS_URL: unsetIfEmpty(z.url({ protocol: /^https?$/, error: 'an http(s):// URL' }).optional()),
  /** The `iss` a token must carry: the identity provider. Required in production. */
  JWT_ISSUER: unsetIfEmpty(z.string().min(1).optional()),
  /** The `aud` a token must carry: this shop's API. Required in production. */
  JWT_AUDIENCE: unsetIfEmpty(z.string().min(1).optional()),
  /** The signature algorithms accepted, comma-separated (asymmetric ones only). */
  JWT_ALGORITHMS: z
    .string()
    .default('EdDSA,ES256')
    .transform((list) => list.split(',').map((alg) => alg.trim()))
    .pipe(z.array(z.enum(JWT_ALGORITHMS)).min(1)),
  /** Clock skew allowed when checking `exp` and `nbf`, in seconds. */
  JWT_CLOCK_TOLERANCE_SECONDS: z.coerce.number().int().min(0).max(300).default(5),
});
export type CustomerAuthConfig = z.infer<typeof CustomerAuthConfig>;

/** The database session limits the settings ask for. */
export function sessionLimits(config: BaseConfig): SessionLimits {
  return {
    statementTimeoutMs: config.DB_STATEMENT_TIMEOUT_MS,
    idleInTransactionTimeoutMs: config.DB_IDLE_IN_TRANSACTION_TIMEOUT_MS,
    lockTimeoutMs: config.DB_LOCK_TIMEOUT_MS,
    keepAliveInitialDelayMs: config.DB_KEEPALIVE_INITIAL_DELAY_MS,
  };
}

/** Connections the background work may hold at once: the outbox relay, a sweeper, a prune. */
export const BACKGROUND_CONNECTIONS = 3;

/**
 * The development-only secrets this repository ships: the default admin tokens (here and in
 * docker-compose.yml) and the local servers' passwords (scripts/lib/config.mjs, docker-compose.yml,
 * docker/): each role's and broker user's `<name>_dev_password`, the superusers' `postgres` and
 * `admin`, and RabbitMQ's built-in `guest`.
 */
const DEVELOPMENT_ADMIN_TOKENS: readonly string[] = [DEVELOPMENT_ADMIN_TOKEN, 'compose-dev-admin-token'];
const isDevelopmentPassword = (password: string) =>
  /(^|_)dev_password$/.test(password) || ['postgres', 'admin', 'guest'].includes(password);

/** A URL parsed, or undefined if it is none (the schema reports that). */
function parsedUrl(url: string): URL | undefined {
  try {
    return new URL(url);
  } catch {
    return undefined;
  }
}

/** The passwords a connection URL carries (in its user info or as `?password=`). */
function passwordsIn(url: string): string[] {
  const parsed = parsedUrl(url);
  return parsed ? [decodeURIComponent(parsed.password), parsed.searchParams.get('password') ?? ''].filter(Boolean) : [];
}

/** In production, development defaults are refused: secrets must be given. */
function refuseDevelopmentDefaults(config: BaseConfig): string[] {
  if (config.NODE_ENV !== 'production' || config.ALLOW_DEVELOPMENT_SECRETS) return [];
  const problems: string[] = [];
  if (config.ADMIN_TOKEN.some((token) => DEVELOPMENT_ADMIN_TOKENS.includes(token))) {
    problems.push('  ADMIN_TOKEN: must be set in production (a development default is for development only)');
  }
  if ('JWT_ALGORITHMS' in config) {
    // Without these, tokens are checked against the development key pair, whose private half is public.
    const jwt = config as BaseConfig & CustomerAuthConfig;
    const required = { JWT_JWKS_URL: jwt.JWT_JWKS_URL, JWT_ISSUER: jwt.JWT_ISSUER, JWT_AUDIENCE: jwt.JWT_AUDIENCE };
    for (const [setting, value] of Object.entries(required)) {
      if (value === undefined) {
        problems.push(`  ${setting}: must be set in production (unset, customer tokens use the development key)`);
      }
    }
  }
  const urls = {
    DATABASE_URL: [config.DATABASE_URL],
    MIGRATION_DATABASE_URL: config.MIGRATION_DATABASE_URL === undefined ? [] : [config.MIGRATION_DATABASE_URL],
    AMQP_URL: config.AMQP_URL,
  };
  for (const [setting, list] of Object.entries(urls)) {
    if (list.some((url) => passwordsIn(url).some(isDevelopmentPassword))) {
      problems.push(`  ${setting}: its password is a development default; give the production one`);
    }
  }
  return problems;
}

/** Postgres URL modes that refuse a connection without TLS. */
const TLS_SSLMODES = ['require', 'verify-ca', 'verify-full'];

/** With REQUIRE_TLS, every connection to the database and the broker must be one that uses TLS. */
function refusePlainConnections(config: BaseConfig): string[] {
  if (!config.REQUIRE_TLS) return [];
  const problems: string[] = [];
  const databaseUrls = { DATABASE_URL: config.DATABASE_URL, MIGRATION_DATABASE_URL: config.MIGRATION_DATABASE_URL };
  for (const [setting, url] of Object.entries(databaseUrls)) {
    const sslmode = url === undefined ? 'unset' : (parsedUrl(url)?.searchParams.get('sslmode') ?? '');
    if (!TLS_SSLMODES.includes(sslmode) && sslmode !== 'unset') {
      problems.push(`  ${setting}: REQUIRE_TLS is set: add sslmode=require, verify-ca or verify-full`);
    }
  }
  const plain = config.AMQP_URL.filter((url) => !url.startsWith('amqps://'));
  if (plain.length) {
    const hosts = plain.map((url) => parsedUrl(url)?.host ?? '?').join(', ');
    problems.push(`  AMQP_URL: REQUIRE_TLS is set: amqps:// URLs only (plain amqp:// to ${hosts})`);
  }
  const jwksUrl = (config as Partial<CustomerAuthConfig>).JWT_JWKS_URL;
  if (jwksUrl?.startsWith('http://')) problems.push(`  JWT_JWKS_URL: REQUIRE_TLS is set: an https:// URL`);
  return problems;
}

/**
 * The consumer handles one batch at a time in one transaction: the handlers need one connection
 * of their own beside the requests' share and the background work, or votes and acks would wait
 * for a connection behind HTTP requests. Prefetch beyond two batches (the one in hand, the next
 * one gathering) would only wait in memory.
 */
function refuseOversubscribedPool(config: BaseConfig): string[] {
  const handlersShare = config.DB_POOL_SIZE - config.DB_REQUEST_CONNECTIONS - BACKGROUND_CONNECTIONS;
  const problems: string[] = [];
  if (handlersShare < 1) {
    problems.push(
      `  DB_REQUEST_CONNECTIONS: ${config.DB_REQUEST_CONNECTIONS} leaves the message handlers no connection ` +
        `(DB_POOL_SIZE ${config.DB_POOL_SIZE} - DB_REQUEST_CONNECTIONS - ${BACKGROUND_CONNECTIONS} for the relay, ` +
        `sweeper and pruning must be at least 1)`,
    );
  }
  if (config.AMQP_PREFETCH > 2 * config.MESSAGE_BATCH_SIZE) {
    problems.push(
      `  AMQP_PREFETCH: ${config.AMQP_PREFETCH} exceeds two batches (2 × MESSAGE_BATCH_SIZE ${config.MESSAGE_BATCH_SIZE}): ` +
        `the handlers take one batch at a time`,
    );
  }
  return problems;
}

/** The management port is a port of its own. */
function refuseSharedManagementPort(config: BaseConfig): string[] {
  return config.MANAGEMENT_PORT === config.PORT
    ? [`  MANAGEMENT_PORT: ${config.MANAGEMENT_PORT} is PORT too; give it another port, or leave it unset`]
    : [];
}

/** Whether the service serves its OpenAPI document at /docs (see ENABLE_DOCS). */
export const docsEnabled = (config: BaseConfig): boolean => config.ENABLE_DOCS ?? config.NODE_ENV !== 'production';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Validates the environment at boot; a wrong or missing setting fails the start and is named. */
export function loadConfig<S extends z.ZodType>(schema: S, env: NodeJS.ProcessEnv = process.env): z.infer<S> {
  const result = schema.safeParse(env);
  const problems = result.success
    ? [refuseDevelopmentDefaults, refusePlainConnections, refuseOversubscribedPool, refuseSharedManagementPort].flatMap(
        (refuse) => refuse(result.data as BaseConfig),
      )
    : result.error.issues.map((issue) => `  ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  if (result.success && problems.length === 0) return result.data;
  throw new ConfigError(`invalid configuration:\n${problems.join('\n')}`);
}

import { Client, ClientConfig } from 'pg';
import { DataSource, DataSourceOptions, MixedList } from 'typeorm';
import { CreateInbox1764000000001 } from '@shop/inbox';
import { CreateOutbox1764000000000, OutboxFastPath1764000000002 } from '@shop/outbox';
import { DEFAULT_SESSION_LIMITS, type SessionLimits, sessionLimitOptions } from './session-limits';

/** Migration or entity classes (or glob paths), as TypeORM takes them. */
export type Classes = MixedList<string | (new () => unknown)>;

export interface ServiceDataSourceOptions {
  url: string;
  poolSize?: number;
  /** The service's own migrations; the outbox and inbox tables are added before them. */
  migrations: Classes;
  entities?: Classes;
  applicationName: string;
  /**
   * Runs parameterized statements as named (server-side prepared) ones, so Postgres parses and
   * plans each text once per connection. Off behind a pooler that does not keep them (PgBouncer
   * in transaction mode before 1.21, or without max_prepared_statements).
   */
  preparedStatements?: boolean;
  /** How long a session may wait, run or sit idle while it holds locks (see `SessionLimits`). */
  sessionLimits?: SessionLimits;
}

/** At most this many distinct statement texts get a name; any beyond run unnamed (bounded memory per connection). */
const MAX_PREPARED_STATEMENTS = 500;
const statementNames = new Map<string, string>();

/** The process-wide name of a statement text (the same text always gets the same name), if any is left. */
function statementName(text: string): string | undefined {
  let name = statementNames.get(text);
  if (name === undefined && statementNames.size < MAX_PREPARED_STATEMENTS) {
    name = `shop_${statementNames.size}`;
    statementNames.set(text, name);
  }
  return name;
}

/**
 * A pg client that never crashes the process: when the server goes away (restart, failover),
 * pg emits 'error' on a client that is checked out but idle between queries, and an 'error'
 * without a listener kills Node. The error is already surfaced to whoever uses the client next
 * (its query fails and the pool discards it), so here it is only noted.
 */
class ResilientClient extends Client {
  private readonly prepares: boolean;

  constructor(config?: string | (ClientConfig & { preparedStatements?: boolean })) {
    super(config);
    this.prepares = typeof config === 'object' && config.preparedStatements === true;
    this.on('error', () => undefined);
  }

  /**
   * A statement with parameters (what TypeORM's `query(sql, params)` sends) runs as a named one:
   * the first use on a connection parses it, later ones only bind and execute. pg keeps track of
   * which names each connection has parsed.
   */
  // @ts-expect-error pg types `query` as a dozen overloads; this passes every form through unchanged
  override query(config: unknown, values?: unknown, callback?: unknown): unknown {
    const name =
      this.prepares && typeof config === 'string' && Array.isArray(values) ? statementName(config) : undefined;
    // @ts-expect-error see above
    return name ? super.query({ name, text: config }, values, callback) : super.query(config, values, callback);
  }
}

/**
 * TypeORM options for one service. The service's role has its own schema as search_path, so
 * tables, the migrations table and the outbox/inbox all live there. Never `synchronize`.
 */
export function serviceDataSourceOptions(options: ServiceDataSourceOptions): DataSourceOptions {
  const migrations = [
    CreateOutbox1764000000000,
    CreateInbox1764000000001,
    OutboxFastPath1764000000002,
    ...asArray(options.migrations),
  ];
  return {
    type: 'postgres',
    url: options.url,
    applicationName: options.applicationName,
    poolSize: options.poolSize ?? 20,
    connectTimeoutMS: 10_000,
    // Passed to the pg pool, which passes them to each client it creates.
    extra: {
      Client: ResilientClient,
      preparedStatements: options.preparedStatements ?? true,
      ...sessionLimitOptions(options.sessionLimits ?? DEFAULT_SESSION_LIMITS),
    },
    entities: options.entities ?? [],
    migrations: migrations as DataSourceOptions['migrations'],
    migrationsTableName: 'migrations',
    migrationsTransactionMode: 'each',
    synchronize: false,
  };
}

/** Runs pending migrations and exits: the step before the apps start (one runner, not each replica). */
export async function runMigrations(options: DataSourceOptions, log: (line: string) => void = console.log) {
  // A migration may rewrite a big table: no statement timeout. The lock and idle bounds stay, so
  // it cannot queue every replica's statements behind a lock it waits for.
  const extra = { ...(options.extra as object), statement_timeout: 0 };
  const dataSource = await new DataSource({ ...options, extra }).initialize();
  try {
    const applied = await dataSource.runMigrations({ transaction: 'each' });
    log(applied.length ? `applied ${applied.map((m) => m.name).join(', ')}` : 'no pending migrations');
  } finally {
    await dataSource.destroy();
  }
}

function asArray<T>(list: MixedList<T>): T[] {
  return Array.isArray(list) ? list : Object.values(list as Record<string, T>);
}

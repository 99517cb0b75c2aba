import { Client, ClientConfig } from 'pg';
import { DataSource, DataSourceOptions, MixedList } from 'typeorm';
import { CreateInbox1764000000001 } from '@shop/inbox';
import { CreateOutbox1764000000000, OutboxFastPath1764000000002 } from '@shop/outbox';

export interface ServiceDataSourceOptions {
  url: string;
  poolSize?: number;
  /** The service's own migrations; the outbox and inbox tables are added before them. */
  migrations: MixedList<string | (new () => unknown)>;
  entities?: MixedList<string | (new () => unknown)>;
  applicationName: string;
}

/**
 * A pg client that never crashes the process: when the server goes away (restart, failover),
 * pg emits 'error' on a client that is checked out but idle between queries, and an 'error'
 * without a listener kills Node. The error is already surfaced to whoever uses the client next
 * (its query fails and the pool discards it), so here it is only noted.
 */
class ResilientClient extends Client {
  constructor(config?: string | ClientConfig) {
    super(config);
    this.on('error', () => undefined);
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
    extra: { Client: ResilientClient },
    entities: options.entities ?? [],
    migrations: migrations as DataSourceOptions['migrations'],
    migrationsTableName: 'migrations',
    migrationsTransactionMode: 'each',
    synchronize: false,
  };
}

/** Runs pending migrations and exits: the step before the apps start (one runner, not each replica). */
export async function runMigrations(options: DataSourceOptions, log: (line: string) => void = console.log) {
  const dataSource = await new DataSource(options).initialize();
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

import { DataSource } from 'typeorm';
import { migrationDatabaseUrl, serviceDataSourceOptions, sessionLimits } from '@shop/service-kit';
import { loadOrderConfig } from './config';
import { orderMigrations } from './migrations';

/**
 * The order service's TypeORM options, as its runtime role (DATABASE_URL) or, given
 * `migrationDatabaseUrl(config)`, as the role that owns its schema (the migrations).
 */
export function orderDataSourceOptions(config = loadOrderConfig(), url = config.DATABASE_URL) {
  return serviceDataSourceOptions({
    url,
    poolSize: config.DB_POOL_SIZE,
    preparedStatements: config.DB_PREPARED_STATEMENTS,
    sessionLimits: sessionLimits(config),
    applicationName: 'order',
    migrations: orderMigrations,
  });
}

/** What the TypeORM CLI loads (migration:generate|run|revert): as the migration role. */
const config = loadOrderConfig();
export default new DataSource(orderDataSourceOptions(config, migrationDatabaseUrl(config)));

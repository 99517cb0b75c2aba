import { DataSource } from 'typeorm';
import { migrationDatabaseUrl, serviceDataSourceOptions, sessionLimits } from '@shop/service-kit';
import { loadInventoryConfig } from './config';
import { inventoryMigrations } from './migrations';

/**
 * The inventory service's TypeORM options, as its runtime role (DATABASE_URL) or, given
 * `migrationDatabaseUrl(config)`, as the role that owns its schema (the migrations).
 */
export function inventoryDataSourceOptions(config = loadInventoryConfig(), url = config.DATABASE_URL) {
  return serviceDataSourceOptions({
    url,
    poolSize: config.DB_POOL_SIZE,
    preparedStatements: config.DB_PREPARED_STATEMENTS,
    sessionLimits: sessionLimits(config),
    applicationName: 'inventory',
    migrations: inventoryMigrations,
  });
}

/** What the TypeORM CLI loads (migration:generate|run|revert): as the migration role. */
const config = loadInventoryConfig();
export default new DataSource(inventoryDataSourceOptions(config, migrationDatabaseUrl(config)));

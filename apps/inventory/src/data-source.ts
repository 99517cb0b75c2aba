import { DataSource } from 'typeorm';
import { serviceDataSourceOptions, sessionLimits } from '@shop/service-kit';
import { loadInventoryConfig } from './config';
import { inventoryMigrations } from './migrations';

/** The inventory service's TypeORM options; also what the TypeORM CLI loads (migration:generate|run|revert). */
export function inventoryDataSourceOptions(config = loadInventoryConfig()) {
  return serviceDataSourceOptions({
    url: config.DATABASE_URL,
    poolSize: config.DB_POOL_SIZE,
    preparedStatements: config.DB_PREPARED_STATEMENTS,
    sessionLimits: sessionLimits(config),
    applicationName: 'inventory',
    migrations: inventoryMigrations,
  });
}

export default new DataSource(inventoryDataSourceOptions());

import { DataSource } from 'typeorm';
import { serviceDataSourceOptions, sessionLimits } from '@shop/service-kit';
import { loadOrderConfig } from './config';
import { orderMigrations } from './migrations';

/** The order service's TypeORM options; also what the TypeORM CLI loads (migration:generate|run|revert). */
export function orderDataSourceOptions(config = loadOrderConfig()) {
  return serviceDataSourceOptions({
    url: config.DATABASE_URL,
    poolSize: config.DB_POOL_SIZE,
    preparedStatements: config.DB_PREPARED_STATEMENTS,
    sessionLimits: sessionLimits(config),
    applicationName: 'order',
    migrations: orderMigrations,
  });
}

export default new DataSource(orderDataSourceOptions());

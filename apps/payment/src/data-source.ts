import { DataSource } from 'typeorm';
import { migrationDatabaseUrl, serviceDataSourceOptions, sessionLimits } from '@shop/service-kit';
import { loadPaymentConfig } from './config';
import { paymentMigrations } from './migrations';

/**
 * The payment service's TypeORM options, as its runtime role (DATABASE_URL) or, given
 * `migrationDatabaseUrl(config)`, as the role that owns its schema (the migrations).
 */
export function paymentDataSourceOptions(config = loadPaymentConfig(), url = config.DATABASE_URL) {
  return serviceDataSourceOptions({
    url,
    poolSize: config.DB_POOL_SIZE,
    preparedStatements: config.DB_PREPARED_STATEMENTS,
    sessionLimits: sessionLimits(config),
    applicationName: 'payment',
    migrations: paymentMigrations,
  });
}

/** What the TypeORM CLI loads (migration:generate|run|revert): as the migration role. */
const config = loadPaymentConfig();
export default new DataSource(paymentDataSourceOptions(config, migrationDatabaseUrl(config)));

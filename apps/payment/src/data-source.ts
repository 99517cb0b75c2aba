import { DataSource } from 'typeorm';
import { serviceDataSourceOptions, sessionLimits } from '@shop/service-kit';
import { loadPaymentConfig } from './config';
import { paymentMigrations } from './migrations';

/** The payment service's TypeORM options; also what the TypeORM CLI loads (migration:generate|run|revert). */
export function paymentDataSourceOptions(config = loadPaymentConfig()) {
  return serviceDataSourceOptions({
    url: config.DATABASE_URL,
    poolSize: config.DB_POOL_SIZE,
    preparedStatements: config.DB_PREPARED_STATEMENTS,
    sessionLimits: sessionLimits(config),
    applicationName: 'payment',
    migrations: paymentMigrations,
  });
}

export default new DataSource(paymentDataSourceOptions());

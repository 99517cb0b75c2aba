import { migrationDatabaseUrl, runMigrations } from '@shop/service-kit';
import { loadPaymentConfig } from './config';
import { paymentDataSourceOptions } from './data-source';

// As the role that owns the schema (MIGRATION_DATABASE_URL); the service itself may only read and write rows.
const config = loadPaymentConfig();
/** Runs the payment service's pending migrations and exits: the step before the app starts. */
runMigrations(paymentDataSourceOptions(config, migrationDatabaseUrl(config))).then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);

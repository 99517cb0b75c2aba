import { migrationDatabaseUrl, runMigrations } from '@shop/service-kit';
import { loadOrderConfig } from './config';
import { orderDataSourceOptions } from './data-source';

// As the role that owns the schema (MIGRATION_DATABASE_URL); the service itself may only read and write rows.
const config = loadOrderConfig();
/** Runs the order service's pending migrations and exits: the step before the app starts. */
runMigrations(orderDataSourceOptions(config, migrationDatabaseUrl(config))).then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);

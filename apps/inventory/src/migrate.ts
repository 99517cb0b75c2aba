import { migrationDatabaseUrl, runMigrations } from '@shop/service-kit';
import { loadInventoryConfig } from './config';
import { inventoryDataSourceOptions } from './data-source';

// As the role that owns the schema (MIGRATION_DATABASE_URL); the service itself may only read and write rows.
const config = loadInventoryConfig();
/** Runs the inventory service's pending migrations and exits: the step before the app starts. */
runMigrations(inventoryDataSourceOptions(config, migrationDatabaseUrl(config))).then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);

import { runMigrations } from '@shop/service-kit';
import { inventoryDataSourceOptions } from './data-source';

/** Runs the inventory service's pending migrations and exits: the step before the app starts. */
runMigrations(inventoryDataSourceOptions()).then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);

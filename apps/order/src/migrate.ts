import { runMigrations } from '@shop/service-kit';
import { orderDataSourceOptions } from './data-source';

/** Runs the order service's pending migrations and exits: the step before the app starts. */
runMigrations(orderDataSourceOptions()).then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);

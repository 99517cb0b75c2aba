import { runMigrations } from '@shop/service-kit';
import { paymentDataSourceOptions } from './data-source';

/** Runs the payment service's pending migrations and exits: the step before the app starts. */
runMigrations(paymentDataSourceOptions()).then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);

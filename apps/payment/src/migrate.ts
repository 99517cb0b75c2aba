import { payment } from './service';

/** Runs the payment service's pending migrations and exits: the step before the app starts. */
void payment.migrate();

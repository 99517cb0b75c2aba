import { order } from './service';

/** Runs the order service's pending migrations and exits: the step before the app starts. */
void order.migrate();

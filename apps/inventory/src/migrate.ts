import { inventory } from './service';

/** Runs the inventory service's pending migrations and exits: the step before the app starts. */
void inventory.migrate();

import { CreateHeldPrepares1764000000101 } from './held-prepares.migration';
import { CreateCoordinatorTables1764000000100 } from './schema.migration';

/** The coordinator's tables, in order: a coordinator's migrations start with these. */
export const COORDINATOR_MIGRATIONS = [CreateCoordinatorTables1764000000100, CreateHeldPrepares1764000000101];

import { COORDINATOR_MIGRATIONS } from '@shop/two-phase-commit';
import { CreateCatalogAndOrders1764000001000 } from './1764000001000-create-catalog-and-orders';
import { ScopeIdempotencyKeysToCustomers1764100001000 } from './1764100001000-scope-idempotency-keys-to-customers';

/** The order service's migrations, in order (the outbox and inbox tables come first, from libs/). */
export const orderMigrations = [
  ...COORDINATOR_MIGRATIONS,
  CreateCatalogAndOrders1764000001000,
  ScopeIdempotencyKeysToCustomers1764100001000,
];

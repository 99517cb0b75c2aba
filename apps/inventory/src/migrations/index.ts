import { CreateParticipantTables1764000000200 } from '@shop/two-phase-commit';
import { CreateStock1764000002000 } from './1764000002000-create-stock';

/** The inventory service's migrations, in order (the outbox and inbox tables come first, from libs/). */
export const inventoryMigrations = [CreateParticipantTables1764000000200, CreateStock1764000002000];

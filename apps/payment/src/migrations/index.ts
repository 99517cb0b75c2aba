import { CreateParticipantTables1764000000200 } from '@shop/two-phase-commit';
import { CreateAccounts1764000003000 } from './1764000003000-create-accounts';

/** The payment service's migrations, in order (the outbox and inbox tables come first, from libs/). */
export const paymentMigrations = [CreateParticipantTables1764000000200, CreateAccounts1764000003000];

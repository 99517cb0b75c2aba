// Generated from services.json by `npm run generate`; edit that instead.
import type { ParticipantContract } from '../participant-contract';
import type { PARTICIPANTS } from '../services.generated';
import * as payment from './payment';
import * as inventory from './inventory';

/** Each participant's own contract (its prepare request, its no-vote reasons), by participant. */
export const PARTICIPANT_CONTRACTS = { payment, inventory } as const satisfies Record<
  (typeof PARTICIPANTS)[number],
  ParticipantContract
>;

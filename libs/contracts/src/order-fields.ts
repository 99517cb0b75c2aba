import type { z } from 'zod';
import type { ParticipantContract } from './participant-contract';
import type { Participant } from './envelope';
import { PARTICIPANT_CONTRACTS } from './participants';

type Contracts = typeof PARTICIPANT_CONTRACTS;
type OrderFieldsOf<P extends Participant> = Contracts[P] extends { orderFields: infer F extends z.ZodRawShape }
  ? F
  : Record<never, never>;
type Intersection<U> = (U extends unknown ? (u: U) => void : never) extends (i: infer I) => void ? I : never;

/** The fields participants add to the order body, by name (each contract module's `orderFields`). */
export type ParticipantOrderFields = Intersection<{ [P in Participant]: OrderFieldsOf<P> }[Participant]>;

/** The fields the order body has of its own: a participant may not declare them. */
const ORDER_BODY_FIELDS = ['customerId', 'items'];

/** Every participant's `orderFields`, in one shape for the order body (POST /orders). */
export const PARTICIPANT_ORDER_FIELDS = mergeOrderFields(PARTICIPANT_CONTRACTS) as ParticipantOrderFields;

/**
 * The `orderFields` of `contracts`, merged, in participant order. A field two participants
 * declare, or one the order body has of its own, stops the load here, named.
 */
export function mergeOrderFields(contracts: Readonly<Record<string, ParticipantContract>>): z.ZodRawShape {
  return Object.entries(contracts).reduce<z.ZodRawShape>((fields, [participant, contract]) => {
    for (const name of Object.keys(contract.orderFields ?? {})) {
      if (ORDER_BODY_FIELDS.includes(name) || name in fields) {
        throw new Error(`libs/contracts/src/participants/${participant}.ts: order field '${name}' is declared already`);
      }
    }
    return { ...fields, ...contract.orderFields };
  }, {});
}

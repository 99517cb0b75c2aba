import type { z } from 'zod';

/**
 * What a participant declares of its own, in `participants/<name>.ts` (gathered by the generated
 * `participants/index.ts`): the prepare request, its reasons to vote no, and what the order body
 * carries for it. The protocol adds the rest (the prepare's `participant` and `deadline`, the
 * protocol's own no-vote reasons).
 */
export interface ParticipantContract {
  /**
   * The fields of its prepare request, as a `z.strictObject`. The prepare envelope takes its
   * fields (`participant` and `deadline` besides): a check goes on a field, not on the object.
   */
  readonly prepareRequest: z.ZodObject;
  /** Why it may vote no, besides the protocol's own reasons (`PROTOCOL_NO_VOTE_REASONS`). */
  readonly noVoteReasons: readonly string[];
  /**
   * Optional: fields the order body (POST /orders) carries for this participant, e.g. a delivery
   * slot, as zod schemas by name. Make them `.optional()` unless every client must send them; the
   * order's prepare request for the participant (apps/order/src/orders/prepare-requests.ts) reads them.
   */
  readonly orderFields?: z.ZodRawShape;
}

import { z } from 'zod';
import { defineMessage } from '../envelope';

export const VOTE_NO_REASONS = [
  'OUT_OF_STOCK',
  'INSUFFICIENT_FUNDS',
  'UNKNOWN_SKU',
  'UNKNOWN_ACCOUNT',
  'DEADLINE_PASSED',
  'ALREADY_ABORTED',
] as const;
export const VoteNoReason = z.enum(VOTE_NO_REASONS);
export type VoteNoReason = z.infer<typeof VoteNoReason>;

/** participant → order: yes (a promise to commit on request) or no with a reason. */
export const VotePayload = z.discriminatedUnion('vote', [
  z.strictObject({ vote: z.literal('yes') }),
  z.strictObject({ vote: z.literal('no'), reason: VoteNoReason }),
]);
export type VotePayload = z.infer<typeof VotePayload>;

export const Vote = defineMessage('vote', 1, VotePayload);

import { z } from 'zod';
import { defineMessage, Participant, PARTICIPANTS, type ServiceName } from '../envelope';
import { PARTICIPANT_CONTRACTS } from '../participants';

/** The protocol's own reasons to vote no, open to every participant. */
export const PROTOCOL_NO_VOTE_REASONS = ['DEADLINE_PASSED', 'ALREADY_ABORTED'] as const;

/** Why participant P may vote no: the protocol's reasons and its own (participants/<P>.ts). */
export type NoVoteReasonOf<P extends Participant> =
  (typeof PROTOCOL_NO_VOTE_REASONS)[number] | (typeof PARTICIPANT_CONTRACTS)[P]['noVoteReasons'][number];

/** The reasons `sender` may give for a no (only the protocol's for a service that is no participant). */
export function noVoteReasonsOf(sender: ServiceName): readonly string[] {
  const own = (PARTICIPANTS as readonly string[]).includes(sender)
    ? PARTICIPANT_CONTRACTS[sender as Participant].noVoteReasons
    : [];
  return [...PROTOCOL_NO_VOTE_REASONS, ...own];
}

/** Every reason any participant may give (which one may give which: `noVoteReasonsOf`). */
export const VOTE_NO_REASONS = [
  ...new Set([...PROTOCOL_NO_VOTE_REASONS, ...PARTICIPANTS.flatMap((p) => PARTICIPANT_CONTRACTS[p].noVoteReasons)]),
] as unknown as readonly [NoVoteReasonOf<Participant>, ...Array<NoVoteReasonOf<Participant>>];
export const VoteNoReason = z.enum(VOTE_NO_REASONS);
export type VoteNoReason = z.infer<typeof VoteNoReason>;

/** participant → order: yes (a promise to commit on request) or no with a reason. */
export const VotePayload = z.discriminatedUnion('vote', [
  z.strictObject({ vote: z.literal('yes') }),
  z.strictObject({ vote: z.literal('no'), reason: VoteNoReason }),
]);
export type VotePayload = z.infer<typeof VotePayload>;

/** A vote participant P may send: yes, or no with one of its reasons. */
export type VoteOf<P extends Participant> = { vote: 'yes' } | { vote: 'no'; reason: NoVoteReasonOf<P> };

export const Vote = defineMessage('vote', 1, VotePayload);

import { z } from 'zod';
import { COORDINATOR, EnvelopeOf, PARTICIPANTS, ServiceName } from './envelope';
import { Ack } from './messages/ack';
import { Decision } from './messages/decision';
import { Inquiry } from './messages/inquiry';
import { Prepare } from './messages/prepare';
import { noVoteReasonsOf, Vote } from './messages/vote';

/** Every checkout message type, by its `type` field. */
export const CHECKOUT_MESSAGES = {
  prepare: Prepare,
  vote: Vote,
  decision: Decision,
  ack: Ack,
  inquiry: Inquiry,
} as const;
export type CheckoutMessageType = keyof typeof CHECKOUT_MESSAGES;

/** Who may send each type: the coordinator drives the protocol, participants answer it. */
export const ALLOWED_SENDERS: Record<CheckoutMessageType, readonly ServiceName[]> = {
  prepare: [COORDINATOR],
  decision: [COORDINATOR],
  vote: PARTICIPANTS,
  ack: PARTICIPANTS,
  inquiry: PARTICIPANTS,
};

/** One schema for any checkout message; the envelope's `type` picks the payload schema. */
export const CheckoutMessage = z
  .discriminatedUnion('type', [Prepare.schema, Vote.schema, Decision.schema, Ack.schema, Inquiry.schema])
  .superRefine((message, ctx) => {
    if (message.type === 'prepare' && message.payload.participant !== message.recipient) {
      ctx.addIssue({
        code: 'custom',
        path: ['payload', 'participant'],
        message: 'must equal the recipient',
      });
    }
    // A no's reason is the protocol's or the voter's own: one participant may not speak for another.
    if (message.type === 'vote' && message.payload.vote === 'no') {
      if (!noVoteReasonsOf(message.sender).includes(message.payload.reason)) {
        ctx.addIssue({
          code: 'custom',
          path: ['payload', 'reason'],
          message: `not a reason ${message.sender} may give (${noVoteReasonsOf(message.sender).join(', ')})`,
        });
      }
    }
  });
export type CheckoutMessage = z.infer<typeof CheckoutMessage>;
export type MessageOfType<T extends CheckoutMessageType> = EnvelopeOf<(typeof CHECKOUT_MESSAGES)[T]>;

export class InvalidMessageError extends Error {
  override readonly name = 'InvalidMessageError';
}

/** Parses an incoming message; throws InvalidMessageError naming every broken field. */
export function parseCheckoutMessage(raw: unknown): CheckoutMessage {
  const result = CheckoutMessage.safeParse(raw);
  if (!result.success) throw new InvalidMessageError(z.prettifyError(result.error));
  return result.data;
}

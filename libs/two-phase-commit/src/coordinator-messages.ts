import { z } from 'zod';
import {
  CheckoutMessage,
  COORDINATOR,
  createMessage,
  Decision,
  Outcome,
  Participant,
  Prepare,
  PreparePayload,
  PrepareRequest,
} from '@shop/contracts';

/* What the coordinator sends, built in one place: the stages it asks in, a prepare, a decision. */

/**
 * The participants in stages: the given ones (each named once, each a participant), then one of
 * everyone they leave out; empty stages dropped; each stage sorted, so its prepares go out in one order.
 */
export function prepareStages<P extends Participant>(
  participants: readonly P[],
  stages: ReadonlyArray<readonly P[]>,
): Array<readonly P[]> {
  const named = stages.flat();
  const stray = named.filter((name, index) => !participants.includes(name) || named.indexOf(name) !== index);
  if (stray.length) throw new Error(`prepare stages: ${stray.join(', ')} named twice, or not a participant`);
  const rest = participants.filter((name) => !named.includes(name));
  return [...stages, rest].filter((stage) => stage.length > 0).map((stage) => [...stage].sort());
}

/**
 * One prepare: what `participant` is asked, with the checkout's deadline, sent at `sentAt` by the
 * database's clock (so a participant with another clock can tell the two apart).
 */
export function prepareMessage<P extends Participant>(
  transactionId: string,
  participant: P,
  request: PrepareRequest<P>,
  deadline: Date,
  sentAt: Date,
): CheckoutMessage {
  return createMessage(Prepare, {
    transactionId,
    sender: COORDINATOR,
    recipient: participant,
    sentAt,
    payload: { participant, deadline: deadline.toISOString(), ...request } as z.input<typeof PreparePayload>,
  });
}

/** The one decision message: the outcome (and why, for an abort) to one participant. */
export function decisionMessage(
  transactionId: string,
  recipient: string,
  outcome: Outcome,
  reason: string | null,
  causationId: string | null,
): CheckoutMessage {
  return createMessage(Decision, {
    transactionId,
    sender: COORDINATOR,
    recipient: recipient as Participant,
    payload: { outcome, ...(reason ? { reason } : {}) },
    causationId,
  });
}

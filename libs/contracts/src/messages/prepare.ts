import { z } from 'zod';
import { defineMessage, Participant, PARTICIPANTS } from '../envelope';
import { PARTICIPANT_CONTRACTS } from '../participants';

const deadline = z.iso.datetime({ offset: true });
type Contracts = typeof PARTICIPANT_CONTRACTS;

/** What participant P is asked to prepare, in its own terms (participants/<P>.ts). */
export type PrepareRequest<P extends Participant> = z.input<Contracts[P]['prepareRequest']>;

/** Participant P's prepare: which participant, by when, and its own request's fields. */
export type PrepareOf<P extends Participant> = z.ZodObject<
  { participant: z.ZodLiteral<P>; deadline: typeof deadline } & ShapeOf<Contracts[P]['prepareRequest']>,
  z.core.$strict
>;
type ShapeOf<T> = T extends z.ZodObject<infer Shape> ? Shape : never;

function prepareOf<P extends Participant>(participant: P): PrepareOf<P> {
  const schema = z.strictObject({
    participant: z.literal(participant),
    deadline,
    ...PARTICIPANT_CONTRACTS[participant].prepareRequest.shape,
  });
  return schema as unknown as PrepareOf<P>;
}

type AnyPrepare = { [P in Participant]: PrepareOf<P> }[Participant];

/** order → participant: "can you promise your part before the deadline?" One member per participant. */
export const PreparePayload = z.discriminatedUnion(
  'participant',
  PARTICIPANTS.map(prepareOf) as unknown as readonly [AnyPrepare, ...AnyPrepare[]],
);
export type PreparePayload = z.infer<typeof PreparePayload>;

export const Prepare = defineMessage('prepare', 1, PreparePayload);

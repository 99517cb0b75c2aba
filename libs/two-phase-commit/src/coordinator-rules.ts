import type { Outcome, VotePayload } from '@shop/contracts';

/*
 * The coordinator's side of presumed-abort two-phase commit as a table: what a vote, an ack, an
 * inquiry or a passed deadline does to a checkout as the coordinator recorded it
 * (model/checkout.pml, `onVote`, `onAck`, `onInquiry` and the sweeper, reads the same). Pure: no
 * database, no clock (whether the deadline passed is part of the recorded state). The coordinator
 * (coordinator.ts) reads the states, applies these rules message by message and writes what they
 * answer.
 */

/** Why the coordinator aborted when no participant said no. */
export const TIMEOUT = 'TIMEOUT';

/** A participant's part in a checkout: its first vote (the one that counts), whether it acked (a commit). */
export interface ParticipantRecord {
  vote: VotePayload | null;
  acked: boolean;
}

/** A checkout as the coordinator recorded it; NONE: never begun here (presumed abort). */
export type Recorded =
  | { state: 'NONE' }
  | {
      state: 'PREPARING' | 'COMMITTED' | 'ABORTED';
      /** The first "no" vote's reason, or TIMEOUT; null for a commit and while undecided. */
      reason: string | null;
      /** The prepare deadline passed, by the coordinator's database clock. */
      expired: boolean;
      /** The participants asked to prepare so far: only they vote, hear the decision and ack it. */
      participants: Readonly<Record<string, ParticipantRecord>>;
      /** The stages not asked yet, in order: each is asked once every participant before it said yes. */
      later: ReadonlyArray<readonly string[]>;
    };
type Begun = Exclude<Recorded, { state: 'NONE' }>;

/** A decision taken now: written with the checkout, sent to every participant. */
export interface Decided {
  transactionId: string;
  outcome: Outcome;
  reason: string | null;
}

/** What a message asks the coordinator to do. Every field is optional: a replay does nothing. */
export interface Effect {
  /** The checkout as it is after the message (the batch's later messages see it). */
  next: Recorded;
  /** Record this vote of the sender's (its first). */
  recordVote?: VotePayload;
  /** Record the sender's ack; `completed`: it was the last one. */
  recordAck?: { completed: boolean };
  /** Take this decision (write it; an abort completes the checkout there and then: `needsAcks`). */
  decide?: Omit<Decided, 'transactionId'>;
  /** Send the decision taken now to these participants (`toldOf`). */
  inform?: readonly string[];
  /** Ask these participants to prepare now (the next stage: every one before it said yes). */
  ask?: readonly string[];
  /** Send the sender (only) this decision: the answer to a vote or an inquiry. */
  tell?: { outcome: Outcome; reason: string | null };
  /** A message the protocol never sends: dead-letter it. */
  poison?: string;
}

export const outcomeOf = (state: Recorded['state']): Outcome | undefined =>
  state === 'COMMITTED' ? 'commit' : state === 'ABORTED' ? 'abort' : undefined;

/**
 * Presumed abort: only a commit is acknowledged (by both sides of the protocol: the one place
 * this is decided). The coordinator re-sends a commit until every participant acked it, and the
 * checkout is complete then; an abort completes the checkout as it is decided, is sent once and
 * never re-sent, and a participant applies it without an ack. A participant that never hears it
 * is PREPARED (it voted yes) and asks (an inquiry, answered abort), or holds nothing (it voted
 * no, or never saw its prepare; a late prepare then meets no tombstone, holds, votes yes and is
 * left to ask in turn). model/checkout.pml checks this.
 */
export const needsAcks = (outcome: Outcome): boolean => outcome === 'commit';

/**
 * Who hears a decision taken now: every participant asked, but for an abort not those whose
 * recorded vote is no. A "no" is final at the participant (REFUSED, or the tombstone: it holds
 * nothing, answers every copy of the prepare with no, and never asks), so it aborted on its own
 * and the abort would tell it nothing. A participant never asked (a later stage) is never told.
 */
export function toldOf(recorded: Begun, outcome: Outcome): string[] {
  return Object.entries(recorded.participants)
    .filter(([, participant]) => outcome === 'commit' || participant.vote?.vote !== 'no')
    .map(([name]) => name)
    .sort();
}

/** The checkout once `decision` is taken, and the effect's fields that take it. */
function decided(
  recorded: Begun,
  outcome: Outcome,
  reason: string | null,
): Required<Pick<Effect, 'next' | 'decide' | 'inform'>> {
  const next: Begun = { ...recorded, state: outcome === 'commit' ? 'COMMITTED' : 'ABORTED', reason };
  return { next, decide: { outcome, reason }, inform: toldOf(next, outcome) };
}

/**
 * A vote. Unknown checkout: presumed abort (a "yes" hears abort; a "no" holds nothing). A
 * participant's first vote counts and is recorded; while collecting votes the first "no" aborts,
 * the last "yes" of a stage asks the next stage, and the last "yes" of the last stage commits. A
 * late or repeated vote changes nothing and is not answered: the decision went, when it was
 * taken, to every participant asked that had not voted no (a commit is re-sent until acked; an
 * abort lost is answered to the inquiry of the participant it leaves PREPARED). A participant
 * never asked is never told: it holds nothing, and presumed abort answers it if it ever asks.
 */
export function onVote(recorded: Recorded, sender: string, vote: VotePayload): Effect {
  if (recorded.state === 'NONE') {
    return vote.vote === 'yes' ? { next: recorded, tell: { outcome: 'abort', reason: null } } : { next: recorded };
  }
  const own = recorded.participants[sender];
  if (!own) return { next: recorded, poison: `a vote from ${sender}, which takes no part in this checkout` };
  if (own.vote !== null) return { next: recorded };
  const next: Begun = { ...recorded, participants: { ...recorded.participants, [sender]: { ...own, vote } } };
  if (recorded.state !== 'PREPARING') return { next, recordVote: vote };
  if (vote.vote === 'no') return { ...decided(next, 'abort', vote.reason), recordVote: vote };
  const allYes = Object.values(next.participants).every((participant) => participant.vote?.vote === 'yes');
  if (!allYes) return { next, recordVote: vote };
  const [stage, ...later] = next.later;
  if (stage) {
    const asked = Object.fromEntries(stage.map((name) => [name, { vote: null, acked: false }]));
    return { next: { ...next, participants: { ...next.participants, ...asked }, later }, recordVote: vote, ask: stage };
  }
  return { ...decided(next, 'commit', null), recordVote: vote };
}

/**
 * An ack: the participant applied the decision. An ack of a commit is recorded once; the last one
 * completes the checkout. An ack of an abort is accepted and changes nothing: presumed abort needs
 * none (the abort completed the checkout), but a participant of an older version still sends it.
 * An ack of anything but the decision taken (or before one, or from a stranger) is poison: a
 * participant acks only what it was sent.
 */
export function onAck(recorded: Recorded, sender: string, outcome: Outcome): Effect {
  if (recorded.state === 'NONE') return { next: recorded };
  const own = recorded.participants[sender];
  if (own && outcome === 'abort' && recorded.state === 'ABORTED') return { next: recorded };
  if (!own || outcome !== outcomeOf(recorded.state)) {
    return { next: recorded, poison: `${sender} acked ${outcome} of a checkout ${recorded.state}` };
  }
  if (own.acked) return { next: recorded };
  const participants = { ...recorded.participants, [sender]: { ...own, acked: true } };
  const completed = Object.values(participants).every((participant) => participant.acked);
  return { next: { ...recorded, participants }, recordAck: { completed } };
}

/**
 * A participant in doubt asks for the outcome: unknown means abort (presumed abort); a decided
 * checkout's decision is sent again; one still collecting votes is decided only by its passed
 * deadline (TIMEOUT), else the participant asks again later.
 */
export function onInquiry(recorded: Recorded): Effect {
  if (recorded.state === 'NONE') return { next: recorded, tell: { outcome: 'abort', reason: null } };
  if (recorded.state === 'PREPARING') return recorded.expired ? onDeadline(recorded) : { next: recorded };
  return { next: recorded, tell: { outcome: outcomeOf(recorded.state)!, reason: recorded.reason } };
}

/** The deadline passed (the sweep): a checkout still collecting votes aborts with TIMEOUT. */
export function onDeadline(recorded: Recorded): Effect {
  if (recorded.state !== 'PREPARING') return { next: recorded };
  return decided(recorded, 'abort', TIMEOUT);
}

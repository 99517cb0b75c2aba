import type { Outcome, VoteNoReason, VotePayload } from '@shop/contracts';
import { needsAcks } from './coordinator-rules';

/*
 * The participant's side of presumed-abort two-phase commit as a table: what a prepare or a
 * decision does to a checkout as this participant recorded it (model/checkout.pml, `onPrepare`
 * and `onDecision`, reads the same). Pure: no database, no clock but the one passed in. The
 * participant (participant.ts) reads the states, applies these rules message by message and
 * writes what they answer.
 */

/** A checkout as this participant recorded it; NONE: never seen here. */
export type Recorded =
  | { state: 'NONE' }
  | { state: 'PREPARED' }
  | { state: 'REFUSED'; reason: VoteNoReason }
  | { state: 'COMMITTED' }
  | { state: 'ABORTED' };
export type RecordedState = Recorded['state'];

/** The reply a message gets (its vote, or its ack of a commit). */
export type Reply = { type: 'vote'; payload: VotePayload } | { type: 'ack'; payload: { outcome: Outcome } };

/** What to write for a checkout: its new state, its vote if it voted now, whether it was decided now. */
export interface Change {
  state: Exclude<RecordedState, 'NONE'>;
  /** Voted now: a yes records when it prepared, a no its reason. */
  vote?: VotePayload;
  /** A decision was applied now. */
  decided?: true;
}

/** A message's effect: the checkout's new state, the reply (none to an abort), and what to write (nothing for a replay). */
export interface Transition {
  next: Recorded;
  reply?: Reply;
  change?: Change;
}

/** What a message asks for, by the table. */
export type Verdict =
  /** Nothing of the resource: reply, and write `change` if any. */
  | ({ do: 'reply' } & Transition)
  /** A fresh prepare in time: the resource votes, and `voted(vote)` is the transition. */
  | { do: 'prepare' }
  /** A decision for a checkout prepared here: the resource applies it, then the transition. */
  | ({ do: 'commit' | 'abort' } & Transition & { change: Change })
  /** A message the protocol never sends (a commit for a checkout never prepared here, say). */
  | { do: 'poison'; problem: string };

const vote = (payload: VotePayload): Reply => ({ type: 'vote', payload });
/** Presumed abort: only a commit is acked (`needsAcks`); an abort is applied in silence. */
const ackOf = (outcome: Outcome): Pick<Transition, 'reply'> =>
  needsAcks(outcome) ? { reply: { type: 'ack', payload: { outcome } } } : {};

/**
 * A prepare. Seen before, it is answered from the recorded state and changes nothing (the
 * barrier: an aborted checkout votes no and holds nothing). Fresh, it is refused once its
 * deadline passed by the coordinator's clock (`coordinatorNowMs`, see `coordinatorNow`), or
 * else put to the resource.
 */
export function onPrepare(recorded: Recorded, deadlineMs: number, coordinatorNowMs: number): Verdict {
  switch (recorded.state) {
    case 'NONE':
      return deadlineMs <= coordinatorNowMs
        ? { do: 'reply', ...voted({ vote: 'no', reason: 'DEADLINE_PASSED' }) }
        : { do: 'prepare' };
    case 'PREPARED':
    case 'COMMITTED':
      return { do: 'reply', next: recorded, reply: vote({ vote: 'yes' }) };
    case 'REFUSED':
      return { do: 'reply', next: recorded, reply: vote({ vote: 'no', reason: recorded.reason }) };
    case 'ABORTED':
      return { do: 'reply', next: recorded, reply: vote({ vote: 'no', reason: 'ALREADY_ABORTED' }) };
  }
}

/** A fresh prepare's vote: a yes is a promise (PREPARED until a decision), a no holds nothing (REFUSED). */
export function voted(payload: VotePayload): Transition {
  const next: Recorded = payload.vote === 'yes' ? { state: 'PREPARED' } : { state: 'REFUSED', reason: payload.reason };
  return { next, reply: vote(payload), change: { state: next.state, vote: payload } };
}

/**
 * A decision. Applied once (a repeated commit is acked again); a prepared checkout's resource
 * applies it; an abort for a checkout never seen leaves the tombstone (ABORTED), so that a late
 * prepare votes no. A commit is acked, an abort is not (presumed abort). A commit for a checkout
 * not prepared, or a decision against the one applied, is poison: the coordinator never sends it.
 */
export function onDecision(recorded: Recorded, outcome: Outcome): Verdict {
  const target = outcome === 'commit' ? 'COMMITTED' : 'ABORTED';
  const decided: Transition & { change: Change } = {
    next: { state: target },
    ...ackOf(outcome),
    change: { state: target, decided: true },
  };
  if (recorded.state === target) return { do: 'reply', next: recorded, ...ackOf(outcome) };
  if (recorded.state === 'PREPARED') return { do: outcome, ...decided };
  if (outcome === 'abort' && (recorded.state === 'NONE' || recorded.state === 'REFUSED')) {
    return { do: 'reply', ...decided };
  }
  return {
    do: 'poison',
    problem: `${outcome} for a checkout ${recorded.state === 'NONE' ? 'never prepared' : recorded.state}`,
  };
}

/** Two changes of one checkout in one batch, as one write: the later state, the vote and the decision kept. */
export function merge(earlier: Change | undefined, later: Change): Change {
  return { ...earlier, ...later };
}

/*
 * The coordinator's clock. A deadline is stamped on the coordinator's database clock, which in a
 * deployment with a database per service is not this participant's. Each prepare's `sentAt` is
 * stamped on that same clock, so the participant's database time at receipt minus `sentAt` is
 * the offset between the two clocks plus the message's delay (never negative: queueing only
 * adds). The least of these over a recent window (NTP's minimum-delay filter) estimates the
 * offset; a deadline is judged by the participant's database clock less that estimate. Over-
 * estimating the delay only judges a prepare a little early in the coordinator's terms (it may
 * vote yes just past its deadline; the coordinator, which times out on its own clock, still
 * aborts), and never judges it before it was sent.
 */

/** How far back offsets count, and the width of the buckets the window keeps (one minimum each). */
export const CLOCK_WINDOW_MS = 30_000;
const CLOCK_BUCKET_MS = 3_000;

/** What this participant knows of the coordinator's clock: the least offset seen per recent bucket. */
export interface CoordinatorClock {
  readonly buckets: ReadonlyArray<{ readonly startMs: number; readonly offsetMs: number }>;
}
export const NO_CLOCK_SAMPLES: CoordinatorClock = { buckets: [] };

/** The clock once a prepare sent at `sentAtMs` (coordinator's clock) arrived at `receivedAtMs` (this database's). */
export function observeSent(clock: CoordinatorClock, receivedAtMs: number, sentAtMs: number): CoordinatorClock {
  const offsetMs = receivedAtMs - sentAtMs;
  const buckets = clock.buckets.filter((bucket) => bucket.startMs > receivedAtMs - CLOCK_WINDOW_MS);
  const last = buckets.at(-1);
  if (last && last.startMs > receivedAtMs - CLOCK_BUCKET_MS) {
    return {
      buckets: [...buckets.slice(0, -1), { startMs: last.startMs, offsetMs: Math.min(last.offsetMs, offsetMs) }],
    };
  }
  return { buckets: [...buckets, { startMs: receivedAtMs, offsetMs }] };
}

/** The coordinator's clock now, estimated from this database's (`localNowMs`); the same clock when nothing was seen. */
export function coordinatorNow(clock: CoordinatorClock, localNowMs: number): number {
  const recent = clock.buckets.filter((bucket) => bucket.startMs > localNowMs - CLOCK_WINDOW_MS);
  return recent.length === 0 ? localNowMs : localNowMs - Math.min(...recent.map((bucket) => bucket.offsetMs));
}

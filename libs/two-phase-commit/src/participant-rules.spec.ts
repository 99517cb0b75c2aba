import fc from 'fast-check';
import type { Outcome, VotePayload } from '@shop/contracts';
import {
  Change,
  CLOCK_WINDOW_MS,
  CoordinatorClock,
  coordinatorNow,
  merge,
  NO_CLOCK_SAMPLES,
  observeSent,
  onDecision,
  onPrepare,
  Recorded,
  RecordedState,
  Reply,
  Transition,
  voted,
} from './participant-rules';

const NOW = 1_000_000;
const yes: VotePayload = { vote: 'yes' };
const noFunds: VotePayload = { vote: 'no', reason: 'INSUFFICIENT_FUNDS' };
const voteReply = (payload: VotePayload): Reply => ({ type: 'vote', payload });
const ackReply = (outcome: Outcome): Reply => ({ type: 'ack', payload: { outcome } });

describe('participant rules: the table', () => {
  describe('onPrepare (model/checkout.pml onPrepare)', () => {
    it('puts a fresh prepare to the resource while its deadline is ahead', () => {
      expect(onPrepare({ state: 'NONE' }, NOW + 1, NOW)).toEqual({ do: 'prepare' });
    });

    it('refuses a fresh prepare at or past its deadline, holding nothing', () => {
      for (const deadline of [NOW, NOW - 1]) {
        expect(onPrepare({ state: 'NONE' }, deadline, NOW)).toEqual({
          do: 'reply',
          next: { state: 'REFUSED', reason: 'DEADLINE_PASSED' },
          reply: voteReply({ vote: 'no', reason: 'DEADLINE_PASSED' }),
          change: { state: 'REFUSED', vote: { vote: 'no', reason: 'DEADLINE_PASSED' } },
        });
      }
    });

    it.each<[Recorded, VotePayload]>([
      [{ state: 'PREPARED' }, yes],
      [{ state: 'COMMITTED' }, yes],
      [{ state: 'REFUSED', reason: 'INSUFFICIENT_FUNDS' }, noFunds],
      [{ state: 'ABORTED' }, { vote: 'no', reason: 'ALREADY_ABORTED' }],
    ])(
      'answers a prepare seen before from the state (%j), whatever the deadline, changing nothing',
      (recorded, vote) => {
        for (const deadline of [NOW - 1, NOW + 1]) {
          expect(onPrepare(recorded, deadline, NOW)).toEqual({ do: 'reply', next: recorded, reply: voteReply(vote) });
        }
      },
    );
  });

  describe('voted', () => {
    it('records a yes as PREPARED (a promise) and a no as REFUSED with its reason', () => {
      expect(voted(yes)).toEqual({
        next: { state: 'PREPARED' },
        reply: voteReply(yes),
        change: { state: 'PREPARED', vote: yes },
      });
      expect(voted(noFunds)).toEqual({
        next: { state: 'REFUSED', reason: 'INSUFFICIENT_FUNDS' },
        reply: voteReply(noFunds),
        change: { state: 'REFUSED', vote: noFunds },
      });
    });
  });

  describe('onDecision (model/checkout.pml onDecision)', () => {
    // Presumed abort: a commit is acked, an abort is applied without a reply.
    const decided = (state: 'COMMITTED' | 'ABORTED', outcome: Outcome) => ({
      next: { state },
      ...(outcome === 'commit' ? { reply: ackReply(outcome) } : {}),
      change: { state, decided: true },
    });
    const prepared: Recorded = { state: 'PREPARED' };
    const refused: Recorded = { state: 'REFUSED', reason: 'INSUFFICIENT_FUNDS' };
    it.each<[string, Recorded, Outcome, object]>([
      [
        'PREPARED, commit: the resource commits',
        prepared,
        'commit',
        { do: 'commit', ...decided('COMMITTED', 'commit') },
      ],
      ['PREPARED, abort: the resource aborts', prepared, 'abort', { do: 'abort', ...decided('ABORTED', 'abort') }],
      // The tombstone: a late prepare meets it and votes no.
      ['NONE, abort: the tombstone', { state: 'NONE' }, 'abort', { do: 'reply', ...decided('ABORTED', 'abort') }],
      ['REFUSED, abort: nothing to release', refused, 'abort', { do: 'reply', ...decided('ABORTED', 'abort') }],
      [
        'COMMITTED, commit: acked again',
        { state: 'COMMITTED' },
        'commit',
        { do: 'reply', next: { state: 'COMMITTED' }, reply: ackReply('commit') },
      ],
      [
        'ABORTED, abort: applied already, nothing to answer',
        { state: 'ABORTED' },
        'abort',
        { do: 'reply', next: { state: 'ABORTED' } },
      ],
    ])('%s', (_, recorded, outcome, verdict) => {
      expect(onDecision(recorded, outcome)).toEqual(verdict);
    });

    it.each<Recorded>([
      { state: 'NONE' },
      { state: 'PREPARED' },
      { state: 'REFUSED', reason: 'OUT_OF_STOCK' },
      { state: 'ABORTED' },
    ])('never acks an abort (presumed abort), from %j', (recorded) => {
      const verdict = onDecision(recorded, 'abort');
      expect(verdict).toMatchObject({ next: { state: 'ABORTED' } });
      expect(verdict).not.toHaveProperty('reply');
    });

    it.each<[Recorded, Outcome]>([
      [{ state: 'NONE' }, 'commit'],
      [{ state: 'REFUSED', reason: 'OUT_OF_STOCK' }, 'commit'],
      [{ state: 'ABORTED' }, 'commit'],
      [{ state: 'COMMITTED' }, 'abort'],
    ])('calls %j + %s poison: the coordinator never sends it', (recorded, outcome) => {
      expect(onDecision(recorded, outcome)).toMatchObject({ do: 'poison', problem: expect.stringContaining(outcome) });
    });
  });

  describe('merge', () => {
    it('keeps the later state, the vote and the decision of two changes in one batch', () => {
      const vote: Change = { state: 'PREPARED', vote: yes };
      expect(merge(undefined, vote)).toEqual(vote);
      expect(merge(vote, { state: 'ABORTED', decided: true })).toEqual({ state: 'ABORTED', vote: yes, decided: true });
      expect(merge({ state: 'ABORTED', decided: true }, { state: 'ABORTED', decided: true })).toEqual({
        state: 'ABORTED',
        decided: true,
      });
    });
  });

  describe("the coordinator's clock", () => {
    it('is this clock while nothing was seen', () => {
      expect(coordinatorNow(NO_CLOCK_SAMPLES, NOW)).toBe(NOW);
    });

    it('takes the least offset seen in the window, and forgets offsets older than the window', () => {
      let clock = observeSent(NO_CLOCK_SAMPLES, NOW, NOW - 20_000 - 500); // offset 20.5 s: 20 s skew, 0.5 s delay
      clock = observeSent(clock, NOW + 1_000, NOW + 1_000 - 20_000 - 100); // a prompter one: 0.1 s delay
      clock = observeSent(clock, NOW + 10_000, NOW + 10_000 - 20_000 - 5_000); // queued for 5 s
      expect(coordinatorNow(clock, NOW + 10_000)).toBe(NOW + 10_000 - 20_100);
      // 30 s on, the prompt offset's bucket is gone; only the 5 s-delayed one is left.
      expect(coordinatorNow(clock, NOW + CLOCK_WINDOW_MS + 1)).toBe(NOW + CLOCK_WINDOW_MS + 1 - 25_000);
      expect(coordinatorNow(clock, NOW + 10_000 + CLOCK_WINDOW_MS)).toBe(NOW + 10_000 + CLOCK_WINDOW_MS);
    });

    it('keeps a bounded number of buckets however many prepares arrive', () => {
      let clock: CoordinatorClock = NO_CLOCK_SAMPLES;
      for (let at = 0; at < 10 * CLOCK_WINDOW_MS; at += 100) clock = observeSent(clock, at, at - 50);
      expect(clock.buckets.length).toBeLessThanOrEqual(11);
    });
  });
});

/*
 * A participant over the table, as participant.ts runs it and its database keeps it, for one
 * checkout: a batch of deliveries is one transaction (the inbox, the rules message by message,
 * the merged change written, the replies in the outbox), committed or lost as a whole; a message
 * the table calls poison is set aside and the rest run again, the set-aside ones alone after
 * (Transactions.runBatch).
 */

type Delivery =
  { type: 'prepare'; messageId: string; late: boolean } | { type: 'decision'; messageId: string; outcome: Outcome };
type ResourceCall = 'prepare yes' | 'prepare no' | 'commit' | 'abort';

/** The checkout's row as writeStates leaves it (participant-store.ts). */
interface Row {
  state: RecordedState;
  voteReason: string | null;
  prepared: boolean;
  decided: boolean;
}
/** What a committed message did: the state it met, its reply (none to an abort), the state it left. */
interface Handled {
  message: Delivery;
  before: RecordedState;
  reply?: Reply;
  after: RecordedState;
}
/** What the participant's database holds as of its last commit (all that survives a crash). */
interface Committed {
  row: Row;
  inbox: ReadonlySet<string>;
  handled: readonly Handled[];
  calls: readonly ResourceCall[];
}
const EMPTY: Committed = {
  row: { state: 'NONE', voteReason: null, prepared: false, decided: false },
  inbox: new Set(),
  handled: [],
  calls: [],
};

/** lockTransactions' reading of a row. */
const recordedOf = (row: Row): Recorded =>
  row.state === 'REFUSED' ? { state: 'REFUSED', reason: row.voteReason as 'INSUFFICIENT_FUNDS' } : { state: row.state };
/** writeStates' UPDATE of a row with a change. */
const written = (row: Row, change: Change): Row => ({
  state: change.state,
  voteReason: change.vote ? (change.vote.vote === 'no' ? change.vote.reason : null) : row.voteReason,
  prepared: change.vote ? change.vote.vote === 'yes' : row.prepared,
  decided: change.decided ? true : row.decided,
});

interface World {
  /** The resource's answer to each prepare it is asked (asked again after a rollback). */
  vote(): VotePayload;
  /** Whether this handling of a prepare finds its deadline passed. */
  late(message: Delivery & { type: 'prepare' }): boolean;
}

/** One transaction over `items`: its new committed state, or the position of the poison that failed it. */
function transaction(db: Committed, items: readonly Delivery[], world: World): Committed | { poison: number } {
  const inbox = new Set(db.inbox);
  let recorded = recordedOf(db.row);
  let change: Change | undefined;
  const handled: Handled[] = [];
  const calls: ResourceCall[] = [];
  for (const [position, message] of items.entries()) {
    if (inbox.has(message.messageId)) continue;
    inbox.add(message.messageId);
    const verdict =
      message.type === 'prepare'
        ? onPrepare(recorded, world.late(message) ? NOW : NOW + 1, NOW)
        : onDecision(recorded, message.outcome);
    let transition: Transition;
    switch (verdict.do) {
      case 'poison':
        return { poison: position };
      case 'prepare': {
        const vote = world.vote();
        calls.push(vote.vote === 'yes' ? 'prepare yes' : 'prepare no');
        transition = voted(vote);
        break;
      }
      case 'commit':
      case 'abort':
        calls.push(verdict.do);
        transition = verdict;
        break;
      case 'reply':
        transition = verdict;
    }
    handled.push({ message, before: recorded.state, reply: transition.reply, after: transition.next.state });
    recorded = transition.next;
    if (transition.change) change = merge(change, transition.change);
  }
  return {
    row: change ? written(db.row, change) : db.row,
    inbox,
    handled: [...db.handled, ...handled],
    calls: [...db.calls, ...calls],
  };
}

/** A batch as Transactions.runBatch runs it: the committed state, and the messages that failed alone (dead-lettered). */
function runBatch(db: Committed, items: readonly Delivery[], world: World): { db: Committed; poisoned: Delivery[] } {
  let together = items.map((_, index) => index);
  const setAside: number[] = [];
  const poisoned: Delivery[] = [];
  while (together.length > 0) {
    const result = transaction(
      db,
      together.map((index) => items[index]),
      world,
    );
    if ('row' in result) {
      db = result;
      break;
    }
    if (together.length === 1) {
      poisoned.push(items[together[0]]);
      break;
    }
    setAside.push(together[result.poison]);
    together = together.filter((_, position) => position !== result.poison);
  }
  for (const index of setAside.sort((a, b) => a - b)) {
    const alone = runBatch(db, [items[index]], world);
    db = alone.db;
    poisoned.push(...alone.poisoned);
  }
  return { db, poisoned };
}

const ALLOWED: Record<RecordedState, readonly RecordedState[]> = {
  NONE: ['PREPARED', 'REFUSED', 'ABORTED'],
  PREPARED: ['PREPARED', 'COMMITTED', 'ABORTED'],
  REFUSED: ['REFUSED', 'ABORTED'],
  COMMITTED: ['COMMITTED'],
  ABORTED: ['ABORTED'],
};
const LEGAL_CALLS = ['', 'prepare no', 'prepare yes', 'prepare yes,commit', 'prepare yes,abort'];

/** The protocol's safety rules over what a participant committed (model/checkout.pml's asserts, for one side). */
function expectSafe(db: Committed): void {
  const states: RecordedState[] = ['NONE', ...db.handled.map((h) => h.after)];
  expect(db.row.state).toBe(states.at(-1));
  db.handled.forEach((h, i) => {
    expect(h.before).toBe(states[i]);
    // Only these moves: a decision applied once, never undone, never the other one.
    expect(ALLOWED[h.before]).toContain(h.after);
  });
  // The resource is asked once, and commits or aborts only what it prepared yes, once.
  expect(LEGAL_CALLS).toContain(db.calls.join(','));
  expect(db.calls.includes('commit')).toBe(db.row.state === 'COMMITTED');
  const votes = db.handled.filter((h) => h.reply?.type === 'vote');
  const first = votes[0]?.reply;
  for (const h of votes) {
    // Until a decision is applied every vote is the first; a yes stays a yes (the promise).
    if (h.after === 'PREPARED' || h.after === 'REFUSED') expect(h.reply).toEqual(first);
    if (h.after === 'COMMITTED') expect(h.reply).toEqual(voteReply(yes));
    if (h.after === 'ABORTED') expect(h.reply).toEqual(voteReply({ vote: 'no', reason: 'ALREADY_ABORTED' }));
  }
  // A checkout that voted no, or was aborted, is never committed; a committed one never aborted.
  if (votes.some((h) => h.reply?.type === 'vote' && h.reply.payload.vote === 'no') || states.includes('ABORTED')) {
    expect(states).not.toContain('COMMITTED');
    expect(db.calls).not.toContain('commit');
  }
  if (states.includes('COMMITTED')) expect(db.calls).not.toContain('abort');
  for (const { message, reply, after } of db.handled) {
    // An ack says what the checkout is now: the decision applied.
    if (reply?.type === 'ack') expect(after).toBe(reply.payload.outcome === 'commit' ? 'COMMITTED' : 'ABORTED');
    // Presumed abort: every commit handled is acked, an abort never is; a prepare always gets its vote.
    if (message.type === 'decision')
      expect(reply).toEqual(message.outcome === 'commit' ? ackReply('commit') : undefined);
    else expect(reply?.type).toBe('vote');
  }
  // What the row says besides the state: prepared iff it voted yes, decided iff it applied one.
  expect(db.row.prepared).toBe(first?.type === 'vote' && first.payload.vote === 'yes');
  expect(db.row.decided).toBe(db.row.state === 'COMMITTED' || db.row.state === 'ABORTED');
}

/** Each prefix of what was handled, delivered again (as one batch, with the ids given), changes nothing. */
function expectIdempotent(db: Committed, world: World, newIds: boolean): void {
  const messages = db.handled.map((h) => h.message);
  for (let end = 1; end <= messages.length; end++) {
    const again = messages.slice(0, end).map((m, i) => (newIds ? { ...m, messageId: `again-${end}-${i}` } : m));
    const replayed = runBatch(db, again, world);
    expect(replayed.poisoned).toEqual([]);
    expect(replayed.db.row).toEqual(db.row);
    expect(replayed.db.calls).toEqual(db.calls);
    if (!newIds) expect(replayed.db.handled).toEqual(db.handled); // the inbox skips every one
  }
}

const votePayload = fc.oneof(
  { weight: 3, arbitrary: fc.constant<VotePayload>(yes) },
  fc.constantFrom<VotePayload>(
    noFunds,
    { vote: 'no', reason: 'UNKNOWN_ACCOUNT' },
    { vote: 'no', reason: 'OUT_OF_STOCK' },
  ),
);
const cycling = <T>(values: readonly T[]) => {
  let next = 0;
  return () => values[next++ % values.length];
};
/** A crash before the commit loses the batch; after it, the broker (never acked) delivers it again. */
const crash = fc.constantFrom('none', 'none', 'before commit', 'after commit');

describe('participant rules: properties over one checkout', () => {
  /*
   * Any messages at all, the protocol's or not: distinct messages (each id one content), delivered
   * in batches picked at random (duplicates, reorderings), with crashes around the commits and a
   * resource that may answer differently each time it is asked.
   */
  const anyMessages = fc
    .array(
      fc.oneof(
        fc.record({ type: fc.constant('prepare' as const), late: fc.nat(3).map((n) => n === 0) }),
        fc.record({ type: fc.constant('decision' as const), outcome: fc.constantFrom<Outcome>('commit', 'abort') }),
      ),
      { minLength: 1, maxLength: 6 },
    )
    .map((messages) => messages.map((m, i) => ({ ...m, messageId: `m${i}` })));
  const schedule = fc.array(fc.record({ picks: fc.array(fc.nat(), { minLength: 1, maxLength: 4 }), crash }), {
    minLength: 1,
    maxLength: 10,
  });

  function deliverAll(
    messages: readonly Delivery[],
    batches: ReadonlyArray<{ picks: number[]; crash: string }>,
    world: World,
  ): { db: Committed; poisoned: Delivery[] } {
    let db = EMPTY;
    const poisoned: Delivery[] = [];
    const queue = batches.map((batch) => ({
      items: batch.picks.map((p) => messages[p % messages.length]),
      crash: batch.crash,
    }));
    for (let i = 0; i < queue.length && i < 40; i++) {
      const { items, crash } = queue[i];
      const result = runBatch(db, items, world);
      if (crash !== 'before commit') {
        db = result.db;
        poisoned.push(...result.poisoned);
      }
      if (crash !== 'none') queue.splice(i + 1, 0, { items, crash: 'none' }); // redelivered
    }
    return { db, poisoned };
  }

  it('keeps the protocol safe and is idempotent, whatever arrives in whatever order, across crashes', () => {
    fc.assert(
      fc.property(
        anyMessages,
        schedule,
        fc.array(votePayload, { minLength: 1, maxLength: 3 }),
        (messages, batches, votes) => {
          const world: World = { vote: cycling(votes), late: (m) => m.late };
          const { db } = deliverAll(messages, batches, world);
          expectSafe(db);
          expectIdempotent(db, world, false);
          expectIdempotent(db, world, true);
        },
      ),
      { numRuns: 500 },
    );
  });

  /*
   * The protocol's own traffic: a coordinator that sends one prepare, decides on this vote (and
   * the other participant's) or its deadline, sends the decision (an abort not to a participant
   * whose first vote was no: coordinator-rules.ts `toldOf`) and re-sends a commit until acked (an
   * abort is sent once: presumed abort); a relay that publishes twice; a broker that delivers in
   * any order, in batches, or loses an abort; a participant that crashes and asks when in doubt
   * (its inquiry answered with the decision). Its prepares are judged late only once the deadline
   * truly passed (the clock property below). It must never meet poison, never ack an abort, and
   * ends agreeing with the decision, holding nothing.
   */
  it('never calls the protocol’s own messages poison, and ends where the coordinator decided', () => {
    fc.assert(
      fc.property(
        fc.array(fc.nat(), { minLength: 1, maxLength: 80 }),
        fc.nat({ max: 60 }),
        fc.array(votePayload, { minLength: 1, maxLength: 3 }),
        fc.boolean(),
        (coins, deadlineStep, votes, otherSaysYes) => {
          const flip = cycling(coins);
          let deadlinePassed = false;
          // Judged by the participant's estimate, which lags: a prepare past its deadline may still look in time.
          const world: World = { vote: cycling(votes), late: () => deadlinePassed && flip() % 2 === 0 };
          let db = EMPTY;
          let decision: Outcome | undefined;
          let acked = false;
          /** The first vote the coordinator received: the one it records. */
          let firstVote: VotePayload | undefined;
          const toParticipant: Delivery[] = [{ type: 'prepare', messageId: 'prepare', late: false }];
          const toCoordinator: Reply[] = [];
          let sent = 0;
          const sendDecision = () => {
            toParticipant.push({ type: 'decision', messageId: `decision-${sent++}`, outcome: decision! });
          };
          const decide = (outcome: Outcome) => {
            if (decision) return;
            decision = outcome;
            if (outcome === 'commit' || firstVote?.vote !== 'no') sendDecision();
          };
          // Done at the coordinator: a commit once acked, an abort as it is decided.
          const done = () => (decision === 'commit' ? acked : decision === 'abort');
          const take = <T>(bag: T[]) => bag.splice(flip() % bag.length, 1)[0];
          const participantTakes = (size: number, crashes: 'none' | 'before commit' | 'after commit') => {
            const items = Array.from({ length: Math.min(size, toParticipant.length) }, () => take(toParticipant));
            const result = runBatch(db, items, world);
            expect(result.poisoned).toEqual([]);
            if (crashes !== 'before commit') {
              toCoordinator.push(...result.db.handled.slice(db.handled.length).flatMap((h) => h.reply ?? []));
              db = result.db;
            }
            if (crashes !== 'none') toParticipant.push(...items); // never acked to the broker: delivered again
          };
          const coordinatorTakes = () => {
            const reply = take(toCoordinator);
            if (reply.type === 'vote') {
              firstVote ??= reply.payload;
              decide(reply.payload.vote === 'yes' && otherSaysYes ? 'commit' : 'abort');
            } else {
              expect(reply.payload.outcome).toBe('commit'); // an abort is never acked
              expect(decision).toBe('commit');
              acked = true;
            }
          };
          const deadlinePasses = () => {
            deadlinePassed = true;
            decide('abort'); // TIMEOUT, if still collecting votes
          };
          const crashes = ['none', 'none', 'before commit', 'after commit'] as const;
          for (let step = 0; step < coins.length; step++) {
            if (step === deadlineStep) deadlinePasses();
            const action = flip() % 8;
            if (action <= 2 && toParticipant.length > 0) participantTakes(1 + (flip() % 3), crashes[flip() % 4]);
            else if (action <= 4 && toCoordinator.length > 0) coordinatorTakes();
            else if (action === 5 && decision === 'commit' && !acked)
              sendDecision(); // re-sent with backoff
            else if (action === 5 && decision === 'abort' && toParticipant.some((m) => m.type === 'decision')) {
              toParticipant.splice(
                toParticipant.findIndex((m) => m.type === 'decision'),
                1,
              ); // an abort lost
            } else if (action === 6 && toParticipant.length > 0) {
              toParticipant.push(toParticipant[flip() % toParticipant.length]); // the relay published it twice
            } else if (action === 6 && toCoordinator.length > 0) {
              toCoordinator.push(toCoordinator[flip() % toCoordinator.length]);
            } else if (action === 7 && db.row.state === 'PREPARED' && decision) sendDecision(); // an inquiry answered
          }
          // The faults stop: all in flight is delivered, the deadline passes, a commit is re-sent
          // until acked, a participant still PREPARED asks.
          const settled = () => done() && toParticipant.length === 0 && db.row.state !== 'PREPARED';
          for (let round = 0; round < 10 && !settled(); round++) {
            while (toParticipant.length > 0) participantTakes(1, 'none');
            while (toCoordinator.length > 0) coordinatorTakes();
            if (!decision) deadlinePasses();
            else if (decision === 'commit' && !acked) sendDecision();
            else if (db.row.state === 'PREPARED') sendDecision(); // its inquiry, answered
          }
          expect(settled()).toBe(true);
          expectSafe(db);
          // An abort leaves it ABORTED, or REFUSED (it voted no, and holds nothing: it need not hear the abort).
          if (decision === 'commit') expect(db.row.state).toBe('COMMITTED');
          else expect(['ABORTED', 'REFUSED']).toContain(db.row.state);
          if (decision === 'commit') expect(db.calls).toEqual(['prepare yes', 'commit']);
          // Nothing held: a yes was committed or aborted.
          expect(db.calls.includes('prepare yes')).toBe(db.calls.includes('commit') || db.calls.includes('abort'));
        },
      ),
      { numRuns: 500 },
    );
  });
});

/*
 * The coordinator's clock seen from here: the coordinator's clock runs `skew` ahead of this one;
 * a prepare sent at coordinator time `sentAt` arrives `delay` ≥ 0 later. Whatever the skew and
 * the delays (and the order the prepares are observed in, batches running side by side), the
 * estimate is never ahead of the coordinator's true clock, so a deadline is never judged passed
 * before it did; and it is never behind a prepare just observed, so a deadline before its prepare
 * was sent is always judged passed.
 */
describe("participant rules: the coordinator's clock estimate", () => {
  const prepares = fc.array(
    fc.record({ at: fc.integer({ min: 0, max: 5 * CLOCK_WINDOW_MS }), delay: fc.integer({ min: 0, max: 60_000 }) }),
    { minLength: 1, maxLength: 30 },
  );
  const skew = fc.integer({ min: -86_400_000, max: 86_400_000 });

  it('is never ahead of the true coordinator clock, nor behind a prepare it just saw', () => {
    fc.assert(
      fc.property(skew, prepares, fc.integer({ min: 0, max: CLOCK_WINDOW_MS - 3_001 }), (skewMs, sent, later) => {
        let clock = NO_CLOCK_SAMPLES;
        let latest = -Infinity;
        for (const { at, delay } of sent) {
          const sentAt = at + skewMs; // the coordinator's clock when it was sent
          const receivedAt = at + delay; // this clock when it arrived
          clock = observeSent(clock, receivedAt, sentAt);
          latest = Math.max(latest, receivedAt);
          const estimate = coordinatorNow(clock, receivedAt);
          expect(estimate).toBeLessThanOrEqual(receivedAt + skewMs);
          expect(estimate).toBeGreaterThanOrEqual(sentAt);
          // Judged by it, the table refuses a prepare only past its deadline, and always one already past when sent.
          expect(onPrepare({ state: 'NONE' }, receivedAt + skewMs + 1, estimate)).toEqual({ do: 'prepare' });
          expect(onPrepare({ state: 'NONE' }, sentAt, estimate)).toMatchObject({
            do: 'reply',
            next: { state: 'REFUSED' },
          });
        }
        // Later on, with no new prepare in between but the last still in the window: still never ahead. (Past
        // the window it is this clock again, which may be ahead: Participant.handle never judges a prepare
        // by it, as it observes each prepare of a batch before judging any.)
        const now = latest + later;
        expect(coordinatorNow(clock, now)).toBeLessThanOrEqual(now + skewMs);
      }),
      { numRuns: 500 },
    );
  });

  it('lags the true clock by no more than the promptest recent prepare’s delay', () => {
    fc.assert(
      fc.property(skew, prepares, (skewMs, sent) => {
        let clock = NO_CLOCK_SAMPLES;
        const ordered = [...sent].sort((a, b) => a.at + a.delay - (b.at + b.delay)); // one participant, in arrival order
        for (const { at, delay } of ordered) clock = observeSent(clock, at + delay, at + skewMs);
        const now = Math.max(...ordered.map((p) => p.at + p.delay));
        const recent = ordered.filter((p) => p.at + p.delay > now - (CLOCK_WINDOW_MS - 3_000));
        const lag = now + skewMs - coordinatorNow(clock, now);
        expect(lag).toBeGreaterThanOrEqual(0);
        expect(lag).toBeLessThanOrEqual(Math.min(...recent.map((p) => p.delay)));
      }),
      { numRuns: 500 },
    );
  });
});

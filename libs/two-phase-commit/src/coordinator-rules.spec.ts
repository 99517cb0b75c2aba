import fc from 'fast-check';
import { isDeepStrictEqual } from 'node:util';
import type { Outcome, VoteNoReason, VotePayload } from '@shop/contracts';
import {
  Effect,
  needsAcks,
  onAck,
  onDeadline,
  onInquiry,
  onVote,
  outcomeOf,
  Recorded,
  TIMEOUT,
  toldOf,
} from './coordinator-rules';

/*
 * The coordinator's table, alone: each rule by example, then properties over random histories of
 * one checkout (2–4 participants; votes yes and no, re-sent copies, acks of either outcome,
 * inquiries, the deadline passing and the sweep) checked against the protocol's invariants
 * (model/checkout.pml, /work/shared/design/checkout-protocol.md: rules 3–5 and the timeouts).
 */

type Begun = Exclude<Recorded, { state: 'NONE' }>;
const NONE: Recorded = { state: 'NONE' };
const YES: VotePayload = { vote: 'yes' };
const no = (reason: VoteNoReason = 'OUT_OF_STOCK'): VotePayload => ({ vote: 'no', reason });
/** A service that takes no part in the checkout. */
const STRANGER = 'stranger';

/** A checkout just begun: every participant's vote still to come; `later` stages not asked yet. */
function collecting(names: readonly string[], expired = false, later: ReadonlyArray<readonly string[]> = []): Begun {
  return {
    state: 'PREPARING',
    reason: null,
    expired,
    participants: Object.fromEntries(names.map((name) => [name, { vote: null, acked: false }])),
    later,
  };
}

/** What reaches the coordinator for a checkout: a message, or the sweep of checkouts past their deadline. */
type Message =
  | { type: 'vote'; sender: string; vote: VotePayload }
  | { type: 'ack'; sender: string; outcome: Outcome }
  | { type: 'inquiry'; sender: string }
  | { type: 'sweep' };
/**
 * A history's events: messages, the deadline passing (the database's clock), a copy of an
 * earlier message again (`back` messages before the last: a re-sent or redelivered copy). An ack
 * of 'told' acks what the checkout decided, as a participant that heard the decision does.
 */
type Event =
  | Exclude<Message, { type: 'ack' }>
  | { type: 'ack'; sender: string; outcome: Outcome | 'told' }
  | { type: 'deadline passes' }
  | { type: 'again'; back: number };

/** One message handled: the checkout before, what the table answered, the checkout after. */
interface Step {
  message: Message;
  before: Recorded;
  effect: Effect;
  /** What is recorded after it: a poison message is dead-lettered, its batch re-runs without it. */
  after: Recorded;
}

/** The coordinator's dispatch (coordinator.ts `handle`; the sweep, `abortExpired`, takes checkouts past their deadline). */
function apply(recorded: Recorded, message: Message): Effect {
  switch (message.type) {
    case 'vote':
      return onVote(recorded, message.sender, message.vote);
    case 'ack':
      return onAck(recorded, message.sender, message.outcome);
    case 'inquiry':
      return onInquiry(recorded);
    case 'sweep': // (also given a checkout decided since: the rule must leave it alone)
      return recorded.state !== 'NONE' && recorded.expired ? onDeadline(recorded) : { next: recorded };
  }
}

/** Frozen all the way down: a rule that mutated the state it was given would throw (strict mode). */
function frozen<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.values(value).forEach(frozen);
    Object.freeze(value);
  }
  return value;
}

/** Runs a history through the table, as the coordinator does message after message. */
function run(events: readonly Event[], initial: Recorded): Step[] {
  let recorded = frozen(initial);
  const sent: Message[] = [];
  const steps: Step[] = [];
  for (const event of events) {
    if (event.type === 'deadline passes') {
      if (recorded.state !== 'NONE') recorded = frozen({ ...recorded, expired: true });
      continue;
    }
    const message: Message | undefined =
      event.type === 'again'
        ? sent[sent.length - 1 - (event.back % Math.max(sent.length, 1))]
        : event.type === 'ack' && event.outcome === 'told'
          ? { ...event, outcome: outcomeOf(recorded.state) ?? 'commit' }
          : (event as Message);
    if (!message) continue; // nothing to copy yet
    sent.push(message);
    const effect = apply(recorded, message);
    const after = effect.poison ? recorded : effect.next;
    steps.push({ message, before: recorded, effect, after });
    recorded = frozen(after);
  }
  return steps;
}

const senderOf = (message: Message) => (message.type === 'sweep' ? undefined : message.sender);
const decisionOf = (recorded: Recorded) =>
  recorded.state === 'NONE' ? undefined : { outcome: outcomeOf(recorded.state), reason: recorded.reason };

/** The checkout as the store has it after writing the effect's changes (coordinator-store.ts `writeChanges`). */
function written(before: Recorded, message: Message, effect: Effect): Recorded {
  if (before.state === 'NONE') return before;
  const sender = senderOf(message)!;
  let participants = before.participants;
  if (effect.recordVote)
    participants = { ...participants, [sender]: { ...participants[sender], vote: effect.recordVote } };
  if (effect.recordAck) participants = { ...participants, [sender]: { ...participants[sender], acked: true } };
  // An ask: the next stage's participants join the asked ones (their prepares sent), vote to come.
  let later = before.later;
  if (effect.ask) {
    expectEqual(effect.ask, later[0]);
    for (const name of effect.ask) participants = { ...participants, [name]: { vote: null, acked: false } };
    later = later.slice(1);
  }
  const decided = effect.decide
    ? {
        state: effect.decide.outcome === 'commit' ? ('COMMITTED' as const) : ('ABORTED' as const),
        reason: effect.decide.reason,
      }
    : {};
  return { ...before, ...decided, participants, later };
}

const REASONS: readonly VoteNoReason[] = ['OUT_OF_STOCK', 'INSUFFICIENT_FUNDS', 'DEADLINE_PASSED', 'ALREADY_ABORTED'];

function events(names: readonly string[]): fc.Arbitrary<Event> {
  const sender = fc.oneof(
    { weight: 12, arbitrary: fc.constantFrom(...names) },
    { weight: 1, arbitrary: fc.constant(STRANGER) },
  );
  const vote = fc.oneof(
    { weight: 4, arbitrary: fc.constant(YES) },
    { weight: 1, arbitrary: fc.constantFrom(...REASONS).map(no) },
  );
  return fc.oneof(
    { weight: 6, arbitrary: fc.record({ type: fc.constant('vote' as const), sender, vote }) },
    {
      weight: 5,
      arbitrary: fc.record({
        type: fc.constant('ack' as const),
        sender,
        outcome: fc.constantFrom<Outcome | 'told'>('told', 'told', 'commit', 'abort'),
      }),
    },
    { weight: 2, arbitrary: fc.record({ type: fc.constant('inquiry' as const), sender }) },
    { weight: 1, arbitrary: fc.constant({ type: 'deadline passes' as const }) },
    { weight: 1, arbitrary: fc.constant({ type: 'sweep' as const }) },
    { weight: 3, arbitrary: fc.record({ type: fc.constant('again' as const), back: fc.nat(6) }) },
  );
}

/**
 * A checkout with 2–4 participants, asked all at once or in 2–3 stages (each stage asked once
 * every one before it said yes), and a random history of up to 40 events.
 */
const histories = fc
  .integer({ min: 2, max: 4 })
  .map((n) => ['inventory', 'payment', 'shipping', 'loyalty'].slice(0, n))
  .chain((names) =>
    fc.record({
      names: fc.constant(names),
      stages: fc
        .array(fc.integer({ min: 1, max: names.length - 1 }), { maxLength: 2 })
        .map((cuts) => [...new Set([0, ...cuts, names.length])].sort((a, b) => a - b))
        .map((bounds) => bounds.slice(1).map((end, i) => names.slice(bounds[i], end))),
      events: fc.array(events(names), { minLength: 1, maxLength: 60, size: 'max' }),
    }),
  );

/** A checkout just begun in `stages`: the first asked, the others later. */
const begun = (stages: ReadonlyArray<readonly string[]>) => collecting(stages[0], false, stages.slice(1));

/**
 * Who is asked after each step, as the protocol says: the first stage, and each next one once
 * every participant asked before it has a recorded yes.
 */
function askedAfter(steps: readonly Step[], stages: ReadonlyArray<readonly string[]>): Array<Set<string>> {
  const asked = new Set(stages[0]);
  let next = 1;
  const yes = new Set<string>();
  return steps.map(({ message, effect }) => {
    if (message.type === 'vote' && effect.recordVote?.vote === 'yes') yes.add(message.sender);
    if (next < stages.length && [...asked].every((name) => yes.has(name))) stages[next++].forEach((n) => asked.add(n));
    return new Set(asked);
  });
}

/** `expect(actual).toEqual(expected)`, compared without Jest first: a property checks tens of thousands of steps. */
function expectEqual(actual: unknown, expected: unknown): void {
  if (!isDeepStrictEqual(actual, expected)) expect(actual).toEqual(expected);
}

const RUNS = { numRuns: 1_000 };
/** For every history: its steps, from a checkout just begun (in its stages). */
const forHistories = (
  check: (steps: Step[], names: readonly string[], stages: ReadonlyArray<readonly string[]>) => void,
) =>
  fc.assert(
    fc.property(histories, ({ names, stages, events }) => check(run(events, begun(stages)), names, stages)),
    RUNS,
  );

describe('coordinator rules', () => {
  const both = ['inventory', 'payment'];

  describe('onVote', () => {
    it('records a first yes and waits for the others', () => {
      const effect = onVote(collecting(both), 'inventory', YES);
      expect(effect).toEqual({
        next: {
          ...collecting(both),
          participants: { inventory: { vote: YES, acked: false }, payment: { vote: null, acked: false } },
        },
        recordVote: YES,
      });
    });

    it('commits at the last yes', () => {
      const effect = onVote(onVote(collecting(both), 'inventory', YES).next, 'payment', YES);
      expect(effect.decide).toEqual({ outcome: 'commit', reason: null });
      expect(effect.next).toMatchObject({ state: 'COMMITTED', reason: null });
    });

    it('aborts at the first no, with its reason', () => {
      const effect = onVote(collecting(both), 'payment', no('INSUFFICIENT_FUNDS'));
      expect(effect).toMatchObject({
        recordVote: no('INSUFFICIENT_FUNDS'),
        decide: { outcome: 'abort', reason: 'INSUFFICIENT_FUNDS' },
        next: { state: 'ABORTED', reason: 'INSUFFICIENT_FUNDS' },
      });
    });

    it('sends an abort to every participant asked but one that voted no; a commit to every one; and says which need acks', () => {
      const aborted = onVote(collecting(both), 'payment', no('INSUFFICIENT_FUNDS'));
      expect(aborted.inform).toEqual(['inventory']);
      const allAsked = onVote(onVote(collecting(both), 'inventory', YES).next, 'payment', YES);
      expect(allAsked.inform).toEqual(['inventory', 'payment']);
      expect(onDeadline(collecting(both, true)).inform).toEqual(['inventory', 'payment']);
      expect(toldOf(aborted.next as Begun, 'abort')).toEqual(['inventory']);
      expect([needsAcks('commit'), needsAcks('abort')]).toEqual([true, false]);
    });

    it('records a late vote after the decision, and decides nothing more', () => {
      const aborted = onVote(collecting(both), 'payment', no()).next;
      const effect = onVote(aborted, 'inventory', YES);
      expect(effect.recordVote).toEqual(YES);
      expect(effect.decide).toBeUndefined();
      expect(effect.tell).toBeUndefined(); // the abort went to it with the decision
      expect(effect.next).toMatchObject({ state: 'ABORTED' });
    });

    it('counts only the first vote: a second (a re-sent copy, or a changed mind) changes nothing', () => {
      const voted = onVote(collecting(both), 'inventory', YES).next;
      expect(onVote(voted, 'inventory', YES)).toEqual({ next: voted });
      expect(onVote(voted, 'inventory', no())).toEqual({ next: voted });
    });

    it('answers a yes for an unknown checkout with abort, and a no with nothing (presumed abort)', () => {
      expect(onVote(NONE, 'payment', YES)).toEqual({ next: NONE, tell: { outcome: 'abort', reason: null } });
      expect(onVote(NONE, 'payment', no())).toEqual({ next: NONE });
    });

    it('is poison from a service that takes no part in the checkout', () => {
      expect(onVote(collecting(both), STRANGER, YES)).toEqual({ next: collecting(both), poison: expect.any(String) });
    });
  });

  describe('onVote, in stages', () => {
    const staged = collecting(['payment'], false, [['inventory', 'shipping']]);

    it('asks the next stage at the last yes of a stage, and waits for its votes', () => {
      const effect = onVote(staged, 'payment', YES);
      expect(effect).toEqual({
        next: {
          ...staged,
          participants: {
            payment: { vote: YES, acked: false },
            inventory: { vote: null, acked: false },
            shipping: { vote: null, acked: false },
          },
          later: [],
        },
        recordVote: YES,
        ask: ['inventory', 'shipping'],
      });
    });

    it('aborts at a no of the first stage without asking the next: it is never told', () => {
      const effect = onVote(staged, 'payment', no('INSUFFICIENT_FUNDS'));
      expect(effect.decide).toEqual({ outcome: 'abort', reason: 'INSUFFICIENT_FUNDS' });
      expect(effect.ask).toBeUndefined();
      expect(Object.keys((effect.next as Begun).participants)).toEqual(['payment']);
      // Nor is payment: it voted no. A declined payment costs a prepare and a vote, nothing more.
      expect(effect.inform).toEqual([]);
    });

    it('aborts at a no of a later stage, telling the earlier stage (it holds) and not the no-voter', () => {
      const asked = onVote(staged, 'payment', YES).next;
      const effect = onVote(asked, 'inventory', no('OUT_OF_STOCK'));
      expect(effect.inform).toEqual(['payment', 'shipping']);
    });

    it('commits at the last yes of the last stage', () => {
      const asked = onVote(staged, 'payment', YES).next;
      const effect = onVote(onVote(asked, 'inventory', YES).next, 'shipping', YES);
      expect(effect.decide).toEqual({ outcome: 'commit', reason: null });
    });

    it('takes a vote from a participant not asked yet as poison', () => {
      expect(onVote(staged, 'inventory', YES).poison).toBeDefined();
    });
  });

  describe('onAck', () => {
    const committed = onVote(onVote(collecting(both), 'inventory', YES).next, 'payment', YES).next;

    it('records an ack of the decision, and completes the checkout at the last one', () => {
      const first = onAck(committed, 'inventory', 'commit');
      expect(first.recordAck).toEqual({ completed: false });
      expect(onAck(first.next, 'payment', 'commit').recordAck).toEqual({ completed: true });
    });

    it('records an ack once', () => {
      const acked = onAck(committed, 'inventory', 'commit').next;
      expect(onAck(acked, 'inventory', 'commit')).toEqual({ next: acked });
    });

    it('is poison for another outcome than the decision, before any decision, or from a stranger', () => {
      expect(onAck(committed, 'inventory', 'abort').poison).toBeDefined();
      expect(onAck(collecting(both), 'inventory', 'abort').poison).toBeDefined();
      expect(onAck(committed, STRANGER, 'commit').poison).toBeDefined();
    });

    it('takes an ack of an abort and records nothing: presumed abort needs none (a participant of an older version sends it)', () => {
      const aborted = onVote(collecting(both), 'payment', no()).next;
      expect(onAck(aborted, 'inventory', 'abort')).toEqual({ next: aborted });
      expect(onAck(aborted, 'payment', 'abort')).toEqual({ next: aborted });
      expect(onAck(aborted, 'inventory', 'commit').poison).toBeDefined();
      expect(onAck(aborted, STRANGER, 'abort').poison).toBeDefined();
    });

    it('records nothing for an unknown checkout (an abort it forgot)', () => {
      expect(onAck(NONE, 'payment', 'abort')).toEqual({ next: NONE });
    });
  });

  describe('onInquiry', () => {
    it('answers the decision taken, with its reason', () => {
      const aborted = onVote(collecting(both), 'payment', no('INSUFFICIENT_FUNDS')).next;
      expect(onInquiry(aborted)).toEqual({ next: aborted, tell: { outcome: 'abort', reason: 'INSUFFICIENT_FUNDS' } });
    });

    it('answers abort for an unknown checkout (presumed abort)', () => {
      expect(onInquiry(NONE)).toEqual({ next: NONE, tell: { outcome: 'abort', reason: null } });
    });

    it('leaves a checkout collecting votes alone until its deadline passed, then aborts it (TIMEOUT)', () => {
      expect(onInquiry(collecting(both))).toEqual({ next: collecting(both) });
      expect(onInquiry(collecting(both, true))).toMatchObject({
        decide: { outcome: 'abort', reason: TIMEOUT },
        next: { state: 'ABORTED', reason: TIMEOUT },
      });
    });
  });

  describe('onDeadline', () => {
    it('aborts a checkout still collecting votes (TIMEOUT), and nothing decided', () => {
      expect(onDeadline(collecting(both, true)).decide).toEqual({ outcome: 'abort', reason: TIMEOUT });
      const committed = onVote(onVote(collecting(both), 'inventory', YES).next, 'payment', YES).next;
      expect(onDeadline(committed)).toEqual({ next: committed });
      expect(onDeadline(NONE)).toEqual({ next: NONE });
    });
  });

  describe('over random histories of one checkout', () => {
    it('answers with a next state that is exactly what its changes write (what the batch sees is what is stored)', () => {
      forHistories((steps) => {
        for (const { message, before, effect } of steps) {
          if (effect.poison) expectEqual(effect, { next: before, poison: effect.poison });
          else expectEqual(effect.next, written(before, message, effect));
        }
      });
    });

    it('takes at most one decision, only while collecting votes, and never changes it', () => {
      forHistories((steps) => {
        expect(steps.filter((step) => step.effect.decide).length).toBeLessThanOrEqual(1);
        let decision: ReturnType<typeof decisionOf> | undefined;
        for (const { before, effect, after } of steps) {
          if (effect.decide) expectEqual(before.state, 'PREPARING');
          if (decision) expectEqual(decisionOf(after), decision);
          else if (after.state !== 'PREPARING') decision = decisionOf(after);
        }
      });
    });

    it("commits only if every participant's first vote (the first it sent once asked: the one recorded) is yes", () => {
      forHistories((steps, names) => {
        const committing = steps.findIndex((step) => step.effect.decide?.outcome === 'commit');
        if (committing < 0) return;
        for (const name of names) {
          const first = steps
            .slice(0, committing + 1)
            .find((step) => step.message.type === 'vote' && step.message.sender === name && !step.effect.poison);
          expect(first?.message).toMatchObject({ vote: YES });
        }
      });
    });

    it("never commits after a participant's first vote is no, or after the passed deadline was acted on (sweep or inquiry)", () => {
      forHistories((steps) => {
        const refused = steps.findIndex(
          ({ message, before, effect }) =>
            effect.recordVote?.vote === 'no' ||
            ((message.type === 'sweep' || message.type === 'inquiry') &&
              before.state === 'PREPARING' &&
              before.expired),
        );
        if (refused < 0) return;
        expect(steps.slice(refused).some((step) => step.effect.decide?.outcome === 'commit')).toBe(false);
        expect(steps[steps.length - 1].after.state).not.toBe('COMMITTED');
      });
    });

    it('decides when the votes or the deadline decide: the first no aborts, the last first yes of the last stage commits, a passed deadline acted on aborts (TIMEOUT)', () => {
      forHistories((steps, names, stages) => {
        const firstVotes = new Map<string, VotePayload>();
        const asked = [new Set(stages[0]), ...askedAfter(steps, stages)];
        let decided = false;
        steps.forEach(({ message, before, effect }, index) => {
          let expected: Effect['decide'];
          const askedNow = asked[index];
          if (message.type === 'vote' && askedNow.has(message.sender) && !firstVotes.has(message.sender)) {
            firstVotes.set(message.sender, message.vote);
            const allYes = names.every((name) => firstVotes.get(name)?.vote === 'yes');
            if (!decided && message.vote.vote === 'no') expected = { outcome: 'abort', reason: message.vote.reason };
            else if (!decided && allYes) expected = { outcome: 'commit', reason: null };
          }
          const deadlineActedOn =
            (message.type === 'sweep' || message.type === 'inquiry') && before.state === 'PREPARING' && before.expired;
          if (!decided && deadlineActedOn) expected = { outcome: 'abort', reason: TIMEOUT };
          expectEqual(effect.decide, expected);
          decided ||= expected !== undefined;
        });
      });
    });

    it('asks each stage only once every participant asked before it said yes, and only while collecting votes', () => {
      forHistories((steps, _names, stages) => {
        const asked = askedAfter(steps, stages);
        steps.forEach(({ before, effect, after }, index) => {
          if (effect.ask) expectEqual(before.state, 'PREPARING');
          const named = after.state === 'NONE' ? [] : Object.keys(after.participants).sort();
          // Decided first, a later stage is never asked: what is asked is what the rules asked.
          if (after.state === 'PREPARING') expectEqual(named, [...asked[index]].sort());
          else expect(named.every((name) => asked[index].has(name))).toBe(true);
        });
      });
    });

    it('treats a vote or an ack from a participant not asked yet as poison', () => {
      forHistories((steps) => {
        for (const { message, before, effect } of steps) {
          if (before.state === 'NONE' || (message.type !== 'vote' && message.type !== 'ack')) continue;
          if (!(message.sender in before.participants)) expect(effect.poison).toBeDefined();
        }
      });
    });

    it('tells a participant only the decision taken, and answers every inquiry about a decided checkout', () => {
      forHistories((steps) => {
        for (const { message, before, effect, after } of steps) {
          if (after.state === 'PREPARING') expectEqual(effect.tell, undefined);
          if (effect.tell) expectEqual(effect.tell, decisionOf(after));
          if (message.type === 'inquiry' && outcomeOf(before.state)) expectEqual(effect.tell, decisionOf(before));
        }
      });
    });

    it('records each ack of a commit once, completes exactly when every participant asked acked it, takes an ack of an abort and records nothing, and an ack of anything else is poison', () => {
      forHistories((steps) => {
        const acked = new Set<string>();
        for (const { message, before, effect } of steps) {
          if (message.type !== 'ack') {
            expectEqual(effect.recordAck, undefined);
            continue;
          }
          const asked = before.state === 'NONE' ? [] : Object.keys(before.participants);
          const ofTheDecision = asked.includes(message.sender) && message.outcome === outcomeOf(before.state);
          expectEqual(effect.poison !== undefined, !ofTheDecision);
          // Presumed abort: an abort needs no acks; one from a participant of an older version is harmless.
          if (!ofTheDecision || message.outcome === 'abort') {
            expectEqual({ ...effect, poison: undefined }, { next: before, poison: undefined });
            continue;
          }
          const first = !acked.has(message.sender);
          acked.add(message.sender);
          expectEqual(effect.recordAck, first ? { completed: acked.size === asked.length } : undefined);
        }
      });
    });

    it('needs nothing more of an aborted checkout: no ack recorded, nothing sent but the answer to an inquiry', () => {
      forHistories((steps) => {
        for (const { message, before, effect } of steps) {
          if (before.state !== 'ABORTED') continue;
          const { next, recordVote, tell, poison, ...rest } = effect;
          expectEqual(rest, {});
          if (message.type !== 'vote') expectEqual(recordVote, undefined);
          expectEqual(tell, message.type === 'inquiry' ? decisionOf(before) : undefined);
          if (!poison) expectEqual({ ...next, participants: {} }, { ...before, participants: {} });
        }
      });
    });

    it('sends a decision to every participant asked, but an abort not to one whose recorded vote is no (it aborted on its own), and never to one not asked', () => {
      forHistories((steps) => {
        for (const { effect, after } of steps) {
          if (!effect.decide || after.state === 'NONE') {
            expectEqual(effect.inform, undefined);
            continue;
          }
          const expected = Object.entries(after.participants)
            .filter(([, own]) => effect.decide!.outcome === 'commit' || own.vote?.vote !== 'no')
            .map(([name]) => name)
            .sort();
          expectEqual(effect.inform, expected);
          if (effect.decide.outcome === 'commit') expectEqual(effect.inform, Object.keys(after.participants).sort());
        }
      });
    });

    it('changes nothing when a message is applied twice in a row: same state, nothing recorded or decided again', () => {
      forHistories((steps) => {
        for (const { message, effect, after } of steps) {
          const { next, recordVote, recordAck, decide, poison } = apply(after, message);
          expectEqual(
            { next, recordVote, recordAck, decide, poisoned: poison !== undefined },
            {
              next: after,
              recordVote: undefined,
              recordAck: undefined,
              decide: undefined,
              poisoned: effect.poison !== undefined,
            },
          );
        }
      });
    });

    it('never records or decides for an unknown checkout, answers abort to a yes and an inquiry, and nothing else', () => {
      fc.assert(
        fc.property(histories, ({ events }) => {
          for (const { message, effect } of run(events, NONE)) {
            const asks = message.type === 'inquiry' || (message.type === 'vote' && message.vote.vote === 'yes');
            expectEqual(effect, asks ? { next: NONE, tell: { outcome: 'abort', reason: null } } : { next: NONE });
          }
        }),
        RUNS,
      );
    });
  });
});

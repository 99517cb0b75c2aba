import { randomUUID } from 'node:crypto';
import fixturesV1 from '../test/fixtures/v1.json';
import {
  CHECKOUT_MESSAGES,
  createMessage,
  InvalidMessageError,
  noVoteReasonsOf,
  PARTICIPANT_CONTRACTS,
  PARTICIPANTS,
  parseCheckoutMessage,
  Prepare,
  PreparePayload,
  PROTOCOL_NO_VOTE_REASONS,
  routingKey,
  Vote,
  VOTE_NO_REASONS,
} from './index';

const transactionId = randomUUID();

describe('contracts', () => {
  // Contract test: messages written by v1 senders must stay readable. If a change breaks one of
  // these fixtures, it breaks a reader in production: add a new version instead.
  it.each(Object.entries(fixturesV1))('still reads the v1 %s message', (_name, fixture) => {
    const parsed = parseCheckoutMessage(fixture);
    expect(parsed).toEqual(fixture);
  });

  it('has a fixture for every message type', () => {
    const covered = new Set(Object.values(fixturesV1).map((fixture) => fixture.type));
    expect([...covered].sort()).toEqual(Object.keys(CHECKOUT_MESSAGES).sort());
  });

  it('builds a valid envelope with a fresh message id', () => {
    const vote = createMessage(Vote, {
      transactionId,
      sender: 'inventory',
      recipient: 'order',
      payload: { vote: 'no', reason: 'OUT_OF_STOCK' },
    });
    expect(vote).toMatchObject({ type: 'vote', version: 1, causationId: null, traceContext: {} });
    expect(parseCheckoutMessage(JSON.parse(JSON.stringify(vote)))).toEqual(vote);
    expect(
      createMessage(Vote, { transactionId, sender: 'payment', recipient: 'order', payload: { vote: 'yes' } }).messageId,
    ).not.toBe(vote.messageId);
  });

  it('refuses to build a message that breaks its contract', () => {
    expect(() =>
      createMessage(Prepare, {
        transactionId,
        sender: 'order',
        recipient: 'inventory',
        payload: { participant: 'inventory', deadline: new Date().toISOString(), items: [{ sku: 'A', quantity: 0 }] },
      }),
    ).toThrow();
  });

  const base = fixturesV1['prepare-payment'];
  it.each([
    ['an unknown type', { ...base, type: 'refund' }],
    ['an unknown version', { ...base, version: 2 }],
    ['a non-uuid message id', { ...base, messageId: 'abc' }],
    ['an unknown field', { ...base, extra: true }],
    ['an unknown sender', { ...base, sender: 'not-a-service' }],
    ['a fractional amount', { ...base, payload: { ...base.payload, amount: 10.5 } }],
    ['a negative amount', { ...base, payload: { ...base.payload, amount: -1 } }],
    ['an amount as a string', { ...base, payload: { ...base.payload, amount: '100' } }],
    ['a payload for another participant', { ...base, recipient: 'inventory' }],
    ['a missing payload', { ...base, payload: undefined }],
    ['not an object', 'prepare'],
  ])('rejects %s with a readable reason', (_case, raw) => {
    expect(() => parseCheckoutMessage(raw)).toThrow(InvalidMessageError);
  });

  describe("no-vote reasons: the protocol's and the voter's own", () => {
    const voteNo = (sender: string, reason: string) => ({
      ...fixturesV1['vote-no'],
      sender,
      payload: { vote: 'no', reason },
    });

    it.each(PARTICIPANTS)("accepts from %s its own reasons and the protocol's", (participant) => {
      const reasons = [...PROTOCOL_NO_VOTE_REASONS, ...PARTICIPANT_CONTRACTS[participant].noVoteReasons];
      expect(noVoteReasonsOf(participant)).toEqual(reasons);
      for (const reason of reasons) expect(parseCheckoutMessage(voteNo(participant, reason))).toBeTruthy();
    });

    it.each(PARTICIPANTS)("refuses from %s another participant's reason", (participant) => {
      const others = VOTE_NO_REASONS.filter((reason) => !noVoteReasonsOf(participant).includes(reason));
      expect(others.length).toBeGreaterThan(0);
      for (const reason of others) {
        expect(() => parseCheckoutMessage(voteNo(participant, reason))).toThrow(/not a reason .* may give/);
      }
    });

    it('refuses the v1 no of payment (INSUFFICIENT_FUNDS) from the inventory', () => {
      expect(() => parseCheckoutMessage({ ...fixturesV1['vote-no'], sender: 'inventory' })).toThrow(
        InvalidMessageError,
      );
    });

    it('refuses a reason nobody declared', () => {
      expect(() => parseCheckoutMessage(voteNo('payment', 'TOO_EXPENSIVE'))).toThrow(InvalidMessageError);
    });
  });

  describe("participants' own contracts", () => {
    it('give one prepare per participant, with the envelope fields and its own', () => {
      expect(PreparePayload.options.map((option) => option.shape.participant.value)).toEqual([...PARTICIPANTS]);
      for (const option of PreparePayload.options) {
        const own = Object.keys(PARTICIPANT_CONTRACTS[option.shape.participant.value].prepareRequest.shape);
        expect(Object.keys(option.shape)).toEqual(['participant', 'deadline', ...own]);
      }
    });

    it.each(PARTICIPANTS)(
      "%s's prepare request checks its fields, not the object (the prepare takes its fields)",
      (participant) => {
        expect(PARTICIPANT_CONTRACTS[participant].prepareRequest._zod.def.checks ?? []).toEqual([]);
      },
    );
  });

  it('names the recipient and the kind in routing keys', () => {
    expect(routingKey('inventory', 'prepare')).toBe('inventory.prepare');
    expect(routingKey('order', 'vote')).toBe('order.vote');
  });
});

import fc from 'fast-check';
import { randomUUID } from 'node:crypto';
import { Ack, COORDINATOR, createMessage, Inquiry, Outcome, Vote } from '@shop/contracts';
import { PoisonMessageError, silentLogger } from '@shop/messaging';
import { Transactions } from '@shop/outbox';
import { asBatch, handleAlone } from '../../../test/support/batches';
import { createTestSchema, TestSchema } from '../../../test/support/postgres';
import { Coordinator, CoordinatorMessage, COORDINATOR_MIGRATIONS, Decided } from './index';

/*
 * A batch is a transport detail (the design's batching rules): the coordinator must decide
 * exactly what the same messages decide one at a time. Random votes, acks and inquiries over a
 * few checkouts, with copies of message ids, are handled as batches in one schema and one by one
 * (errors caught) in another, through the real Coordinator and Transactions on a real Postgres;
 * then both schemas must hold the same thing.
 */

const PARTICIPANTS = ['inventory', 'payment'] as const;
type Name = (typeof PARTICIPANTS)[number];
/** The checkouts of a run: two collecting votes, one past its deadline, one committed, one aborted, one never begun. */
const ROLES = ['open', 'alsoOpen', 'expired', 'committed', 'aborted', 'unknown'] as const;
type Role = (typeof ROLES)[number];
const NO_REASON = { inventory: 'OUT_OF_STOCK', payment: 'INSUFFICIENT_FUNDS' } as const;

/**
 * What a run sends, as data (the messages are built at run time). An ack acks the decision its
 * checkout had before the batch (a participant acks only a decision it was sent: none, no ack),
 * or the other outcome (poison); `acks`: every participant acks it; a copy is an earlier message
 * again, with its id: the same object, or a copy of it (`redelivered`: decoded from the broker anew).
 */
type Spec =
  | { type: 'vote'; role: Role; sender: Name; yes: boolean }
  | { type: 'inquiry'; role: Role; sender: Name }
  | { type: 'ack'; role: Role; sender: Name; ofTheDecision: boolean }
  | { type: 'acks'; role: Role }
  | { type: 'copy'; back: number; redelivered: boolean };

/** Mostly the checkouts still to decide (the batch decides several at once), some of every other. */
const role = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom<Role>('open', 'alsoOpen') },
  { weight: 2, arbitrary: fc.constantFrom<Role>('expired', 'committed', 'aborted') },
  { weight: 1, arbitrary: fc.constant<Role>('unknown') },
);
const sender = fc.constantFrom(...PARTICIPANTS);
const spec: fc.Arbitrary<Spec> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({ type: fc.constant('vote' as const), role, sender, yes: fc.constantFrom(true, true, false) }),
  },
  { weight: 2, arbitrary: fc.record({ type: fc.constant('inquiry' as const), role, sender }) },
  {
    weight: 4,
    arbitrary: fc.record({
      type: fc.constant('ack' as const),
      role,
      sender,
      ofTheDecision: fc.constantFrom(true, true, true, false),
    }),
  },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('acks' as const), role }) },
  {
    weight: 2,
    arbitrary: fc.record({ type: fc.constant('copy' as const), back: fc.nat(8), redelivered: fc.boolean() }),
  },
);
/** Two batches in a row (the second may ack what the first decided, and redeliver its messages); a wrong ack in the first. */
const runs = fc.record({
  batches: fc.tuple(fc.array(spec, { minLength: 1, maxLength: 16 }), fc.array(spec, { minLength: 1, maxLength: 16 })),
  poisonAt: fc.nat(16),
});
const RUNS = 60;

/** One schema, its coordinator, and the decisions its hook applied in units that committed. */
interface Side {
  schema: TestSchema;
  transactions: Transactions;
  coordinator: Coordinator<Name>;
  decided: Decided[];
}

async function openSide(prefix: string): Promise<Side> {
  const schema = await createTestSchema(prefix, COORDINATOR_MIGRATIONS);
  const transactions = new Transactions(schema.dataSource);
  const decided: Decided[] = [];
  const coordinator = new Coordinator({
    participants: PARTICIPANTS,
    transactions,
    logger: silentLogger,
    hooks: { onDecided: async (unit, decisions) => unit.afterCommit(() => decided.push(...decisions)) },
  });
  return { schema, transactions, coordinator, decided };
}

const vote = (transactionId: string, from: Name, yes: boolean) =>
  createMessage(Vote, {
    transactionId,
    sender: from,
    recipient: COORDINATOR,
    payload: yes ? { vote: 'yes' } : { vote: 'no', reason: NO_REASON[from] },
  });
const ack = (transactionId: string, from: Name, outcome: Outcome) =>
  createMessage(Ack, { transactionId, sender: from, recipient: COORDINATOR, payload: { outcome } });
const inquiry = (transactionId: string, from: Name) =>
  createMessage(Inquiry, {
    transactionId,
    sender: from,
    recipient: COORDINATOR,
    payload: { preparedAt: new Date().toISOString() },
  });

/** Everything a side recorded about `ids` (and which of `messageIds` its inbox holds), timestamps and message ids aside. */
async function recorded(side: Side, ids: string[], messageIds: string[]) {
  const query = <T>(sql: string, params: unknown[]) => side.schema.dataSource.query<T[]>(sql, params);
  return {
    checkouts: await query(
      `SELECT id, state, decision_reason, completed_at IS NOT NULL AS completed
         FROM tpc_transactions WHERE id = ANY($1::uuid[]) ORDER BY id`,
      [ids],
    ),
    participants: await query(
      `SELECT transaction_id, participant, vote, vote_reason, acked_at IS NOT NULL AS acked,
              next_resend_at IS NOT NULL AS resend_scheduled
         FROM tpc_participants WHERE transaction_id = ANY($1::uuid[]) ORDER BY transaction_id, participant`,
      [ids],
    ),
    decisionsSent: (
      await query<{ body: CoordinatorMessage }>(
        `SELECT body FROM outbox WHERE message_type = 'decision' AND (body->>'transactionId')::uuid = ANY($1::uuid[])`,
        [ids],
      )
    )
      .map(({ body }) =>
        JSON.stringify([body.transactionId, body.recipient, body.type, body.payload, body.causationId]),
      )
      .sort(),
    inbox: (
      await query<{ message_id: string }>(
        `SELECT message_id FROM inbox WHERE consumer = 'coordinator' AND message_id = ANY($1::uuid[]) ORDER BY 1`,
        [messageIds],
      )
    ).map((row) => row.message_id),
    hookCalls: side.decided.filter((decision) => ids.includes(decision.transactionId)),
  };
}

describe('coordinator: a batch decides what its messages decide one at a time (real Postgres)', () => {
  let batched: Side;
  let alone: Side;

  beforeAll(async () => {
    [batched, alone] = [await openSide('tpc_batched'), await openSide('tpc_alone')];
  });
  afterAll(async () => {
    await batched?.schema.drop();
    await alone?.schema.drop();
  });

  /** The same checkouts begun in both schemas; the committed and the aborted ones decided already. */
  async function beginCheckouts(): Promise<Record<Role, string>> {
    const ids = Object.fromEntries(ROLES.map((name) => [name, randomUUID()])) as Record<Role, string>;
    const setup = [
      vote(ids.committed, 'inventory', true),
      vote(ids.committed, 'payment', true),
      vote(ids.aborted, 'payment', false),
    ];
    for (const side of [batched, alone]) {
      for (const name of ROLES.filter((name) => name !== 'unknown')) {
        await side.transactions.run((unit) =>
          side.coordinator.begin(unit, {
            id: ids[name],
            timeoutMs: name === 'expired' ? -1 : 3_600_000, // (an inquiry about the expired one aborts it: TIMEOUT)
            requests: {
              inventory: { items: [{ sku: 'A', quantity: 1 }] },
              payment: { customerId: 'c1', amount: 100, currency: 'EUR' },
            },
          }),
        );
      }
      for (const message of setup) await handleAlone(side.transactions, side.coordinator, message);
    }
    return ids;
  }

  /** Each checkout's decision as recorded now (what its participants may ack); an unknown one is presumed aborted. */
  async function decisions(ids: Record<Role, string>): Promise<Map<string, Outcome>> {
    const rows = await batched.schema.dataSource.query<Array<{ id: string; state: string }>>(
      `SELECT id, state FROM tpc_transactions WHERE id = ANY($1::uuid[]) AND state <> 'PREPARING'`,
      [Object.values(ids)],
    );
    return new Map([
      [ids.unknown, 'abort'],
      ...rows.map((row): [string, Outcome] => [row.id, row.state === 'COMMITTED' ? 'commit' : 'abort']),
    ]);
  }

  it('the same checkouts, votes, acks, decisions sent and hook calls; a wrong ack set aside, the rest agree', async () => {
    await fc.assert(
      fc.asyncProperty(runs, async ({ batches, poisonAt }) => {
        const ids = await beginCheckouts();
        const sent: CoordinatorMessage[] = [];
        const poison = new Set<string>();
        for (const [round, specs] of batches.entries()) {
          const decided = await decisions(ids);
          const messages: CoordinatorMessage[] = [];
          const add = (message: CoordinatorMessage) => void (messages.push(message), sent.push(message));
          for (const item of specs) {
            if (item.type === 'copy') {
              const earlier = sent[sent.length - 1 - (item.back % Math.max(sent.length, 1))];
              if (earlier) add(item.redelivered ? structuredClone(earlier) : earlier);
            } else if (item.type === 'vote') add(vote(ids[item.role], item.sender, item.yes));
            else if (item.type === 'inquiry') add(inquiry(ids[item.role], item.sender));
            else {
              const outcome = decided.get(ids[item.role]);
              if (!outcome) continue; // nothing decided yet: nothing to ack
              if (item.type === 'acks') PARTICIPANTS.forEach((from) => add(ack(ids[item.role], from, outcome)));
              else {
                const message = ack(ids[item.role], item.sender, item.ofTheDecision ? outcome : other(outcome));
                if (!item.ofTheDecision && item.role !== 'unknown') poison.add(message.messageId); // (an unknown checkout records no ack)
                add(message);
              }
            }
          }
          if (round === 0) {
            // A participant acks an abort of a checkout that committed: poison, wherever it is in the batch.
            const wrongAck = ack(ids.committed, 'inventory', 'abort');
            poison.add(wrongAck.messageId);
            messages.splice(poisonAt % (messages.length + 1), 0, wrongAck);
            sent.push(wrongAck);
          }

          const { outcomes } = await asBatch(batched.transactions, batched.coordinator, messages);
          const oneByOne: boolean[] = [];
          for (const message of messages) {
            try {
              await handleAlone(alone.transactions, alone.coordinator, message);
              oneByOne.push(true);
            } catch (error) {
              expect(error).toBeInstanceOf(PoisonMessageError);
              oneByOne.push(false);
            }
          }
          const expected = messages.map((message) => !poison.has(message.messageId));
          expect({ round, outcomes }).toEqual({ round, outcomes: expected });
          expect({ round, outcomes: oneByOne }).toEqual({ round, outcomes: expected });

          const everyId = Object.values(ids);
          const messageIds = sent.map((message) => message.messageId);
          expect({ round, ...(await recorded(batched, everyId, messageIds)) }).toEqual({
            round,
            ...(await recorded(alone, everyId, messageIds)),
          });
        }
        // The hook heard of each checkout's decision once at most (and the one-by-one side's hook heard the same).
        const hookIds = batched.decided
          .map((decision) => decision.transactionId)
          .filter((id) => Object.values(ids).includes(id));
        expect(new Set(hookIds).size).toBe(hookIds.length);
      }),
      { numRuns: RUNS },
    );
  });
});

const other = (outcome: Outcome): Outcome => (outcome === 'commit' ? 'abort' : 'commit');

import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { CheckoutMessage, createMessage, Decision, MessageOfType, Outcome, Prepare, VoteOf } from '@shop/contracts';
import { PoisonMessageError, silentLogger } from '@shop/messaging';
import { BatchResult, Transactions, UnitOfWork } from '@shop/outbox';
import { createTestSchema, TestSchema } from '../../../test/support/postgres';
import { CreateParticipantTables1764000000200, Participant, ParticipantMessage, ParticipantResource } from './index';

/*
 * A batch is a transport detail (the design's batching rules): the same messages, handled as
 * batches in one schema and one at a time in another, through the real Participant and
 * Transactions on a real Postgres, must leave the same states, the same resource effects, the
 * same votes and acks in the outbox (each checkout's in the same order), and fail the same messages (poison, set aside in the batch).
 */

/** How a checkout's prepare goes: the resource says yes or no; late: its deadline passed before it was sent; delayed: it waited 30 s in a queue, past its 15 s deadline. */
type Kind = 'yes' | 'no' | 'late' | 'delayed';
const AMOUNT: Record<Kind, number> = { yes: 100, no: 1_000_000, late: 100, delayed: 100 };

interface CheckoutPlan {
  kind: Kind;
  /** What the coordinator decided (commit only for a yes, and only after a prepare was delivered). */
  decision: 'none' | Outcome;
  /** Copies of the prepare (each a new message id), each delivered this many times (the same id again). */
  prepares: number[];
  decisions: number[];
}
interface Plan {
  checkouts: CheckoutPlan[];
  /** A commit for a checkout never prepared, delivered this many times: poison. */
  poison: number | null;
  /** Where the deliveries' order comes from (a key per delivery), and where the batches are cut. */
  keys: number[];
  cuts: number[];
  /** The coordinator's clock, this far from the database's (a database per service). */
  skewMs: number;
}

const deliveries = fc.array(fc.integer({ min: 1, max: 2 }), { minLength: 1, maxLength: 3 });
const checkoutPlan: fc.Arbitrary<CheckoutPlan> = fc
  .record({
    kind: fc.constantFrom<Kind>('yes', 'yes', 'no', 'late', 'delayed'),
    decision: fc.constantFrom<CheckoutPlan['decision']>('none', 'commit', 'abort'),
    prepares: deliveries,
    decisions: deliveries,
  })
  .map((plan) => ({ ...plan, decision: plan.decision === 'commit' && plan.kind !== 'yes' ? 'abort' : plan.decision }));
const plans: fc.Arbitrary<Plan> = fc.record({
  checkouts: fc.array(checkoutPlan, { minLength: 1, maxLength: 4 }),
  poison: fc.option(fc.integer({ min: 1, max: 2 })),
  keys: fc.array(fc.nat(), { minLength: 1, maxLength: 48 }),
  cuts: fc.array(fc.nat(), { maxLength: 2 }),
  skewMs: fc.integer({ min: -60_000, max: 60_000 }),
});

describe('participant: a batch decides what its messages decide one at a time', () => {
  let batched: TestSchema;
  let alone: TestSchema;
  beforeAll(async () => {
    [batched, alone] = await Promise.all([
      createTestSchema('tpc_batched', [CreateParticipantTables1764000000200]),
      createTestSchema('tpc_alone', [CreateParticipantTables1764000000200]),
    ]);
    for (const schema of [batched, alone]) {
      await schema.dataSource.query(`CREATE TABLE effects (n serial, transaction_id uuid, what text)`);
    }
  });
  afterAll(async () => {
    await Promise.all([batched?.drop(), alone?.drop()]);
  });

  /** A payment resource that writes a row per checkout of each call (so a rollback shows) and refuses large amounts. */
  const effect = (unit: UnitOfWork<unknown>, transactionIds: readonly string[], what: string) =>
    unit.manager.query(`INSERT INTO effects (transaction_id, what) SELECT unnest($1::uuid[]), $2`, [
      transactionIds,
      what,
    ]);
  const resource: ParticipantResource<'payment'> = {
    async prepare(unit, prepares) {
      const votes = prepares.map(({ request }): VoteOf<'payment'> =>
        request.amount <= 1_000 ? { vote: 'yes' } : { vote: 'no', reason: 'INSUFFICIENT_FUNDS' },
      );
      await effect(
        unit,
        prepares.filter((_, i) => votes[i].vote === 'yes').map(({ transactionId }) => transactionId),
        'held',
      );
      return votes;
    },
    commit: (unit, transactionIds) => effect(unit, transactionIds, 'captured'),
    abort: (unit, transactionIds) => effect(unit, transactionIds, 'released'),
    async lock(unit, batch) {
      const ids = [...batch.prepares.map((p) => p.transactionId), ...batch.decided].sort();
      await unit.manager.query(`SELECT 1 FROM effects WHERE transaction_id = ANY($1::uuid[]) ORDER BY n FOR UPDATE`, [
        ids,
      ]);
    },
  };

  /** The plan's messages, in delivery order, and the poison's transaction id (if any). */
  function messagesOf(plan: Plan, databaseNowMs: number): { messages: ParticipantMessage[]; ids: string[] } {
    const ids: string[] = [];
    const perCheckout: ParticipantMessage[][] = plan.checkouts.map((checkout) => {
      const transactionId = randomUUID();
      ids.push(transactionId);
      const sentAt = databaseNowMs + plan.skewMs - (checkout.kind === 'delayed' ? 30_000 : 0);
      const deadline =
        checkout.kind === 'late' ? sentAt - 1_000 : checkout.kind === 'delayed' ? sentAt + 15_000 : sentAt + 3_600_000;
      const prepare = (): MessageOfType<'prepare'> =>
        createMessage(Prepare, {
          transactionId,
          sender: 'order',
          recipient: 'payment',
          sentAt: new Date(sentAt),
          payload: {
            participant: 'payment',
            deadline: new Date(deadline).toISOString(),
            customerId: 'c1',
            amount: AMOUNT[checkout.kind],
            currency: 'EUR',
          },
        });
      const decision = (outcome: Outcome) =>
        createMessage(Decision, { transactionId, sender: 'order', recipient: 'payment', payload: { outcome } });
      const copies = <M>(times: number[], make: () => M) => times.flatMap((n) => Array<M>(n).fill(make()));
      return [
        ...copies(checkout.prepares, prepare),
        ...(checkout.decision === 'none'
          ? []
          : copies(checkout.decisions, () => decision(checkout.decision as Outcome))),
      ];
    });
    if (plan.poison !== null) {
      const neverPrepared = randomUUID();
      ids.push(neverPrepared);
      const commit = createMessage(Decision, {
        transactionId: neverPrepared,
        sender: 'order',
        recipient: 'payment',
        payload: { outcome: 'commit' },
      });
      perCheckout.push(Array<ParticipantMessage>(plan.poison).fill(commit));
    }
    // Any order across checkouts and within one, but a commit only after its checkout's first prepare.
    const all = perCheckout.flat();
    const order = all
      .map((message, index) => ({ message, key: plan.keys[index % plan.keys.length] * all.length + index }))
      .sort((a, b) => a.key - b.key)
      .map(({ message }) => message);
    plan.checkouts.forEach((checkout, index) => {
      if (checkout.decision !== 'commit') return;
      const mine = (m: ParticipantMessage) => m.transactionId === ids[index];
      const first = order.findIndex(mine);
      const prepare = order.findIndex((m) => mine(m) && m.type === 'prepare');
      [order[first], order[prepare]] = [order[prepare], order[first]];
    });
    return { messages: order, ids };
  }

  /** Handles `messages` in one of the two ways, through the one path (runBatch); answers each message's outcome. */
  async function handle(schema: TestSchema, batches: ParticipantMessage[][]): Promise<Array<BatchResult<unknown>>> {
    const transactions = new Transactions(schema.dataSource);
    // A fresh participant: its clock (the coordinator's, as its prepares show it) starts empty.
    const participant = new Participant({
      name: 'payment',
      resource,
      transactions,
      logger: silentLogger,
    });
    const outcomes: Array<BatchResult<unknown>> = [];
    for (const batch of batches) {
      outcomes.push(...(await transactions.runBatch(batch, (unit) => participant.handle(unit, unit.items))));
    }
    return outcomes;
  }

  /** What a schema recorded for these checkouts, with their ids replaced by their position in `ids`. */
  async function recorded(schema: TestSchema, ids: string[]) {
    const checkout = (id: string) => ids.indexOf(id);
    const states = await schema.dataSource.query<
      Array<{ transaction_id: string; state: string; vote_reason: string | null; prepared: boolean; decided: boolean }>
    >(
      `SELECT transaction_id, state, vote_reason, prepared_at IS NOT NULL AS prepared, decided_at IS NOT NULL AS decided
         FROM tpc_participant_transactions WHERE transaction_id = ANY($1::uuid[])`,
      [ids],
    );
    const effects = await schema.dataSource.query<Array<{ transaction_id: string; what: string }>>(
      `SELECT transaction_id, what FROM effects WHERE transaction_id = ANY($1::uuid[]) ORDER BY n`,
      [ids],
    );
    const outbox = await schema.dataSource.query<Array<{ body: CheckoutMessage }>>(
      `SELECT body FROM outbox WHERE body->>'transactionId' = ANY($1) ORDER BY id`,
      [ids],
    );
    return {
      states: states
        .map(({ transaction_id, ...state }) => ({ checkout: checkout(transaction_id), ...state }))
        .sort((a, b) => a.checkout - b.checkout),
      // Each checkout's in the order written: a batch keeps a checkout's order, not the order across checkouts.
      effects: byCheckout(effects.map((effect) => [checkout(effect.transaction_id), effect.what] as const)),
      // By checkout, type, payload and the message answered; not by message id or time sent.
      outbox: byCheckout(
        outbox.map(({ body }) => [checkout(body.transactionId), body.type, body.payload, body.causationId] as const),
      ),
    };
  }

  /** Rows grouped by checkout (their first field), each checkout's in their order (a stable sort). */
  const byCheckout = <R extends readonly [number, ...unknown[]]>(rows: R[]) => [...rows].sort((a, b) => a[0] - b[0]);

  it('leaves the same states, effects, votes and acks, and sets the same poison aside', async () => {
    let runs = 0;
    let poisoned = 0;
    await fc.assert(
      fc.asyncProperty(plans, async (plan) => {
        runs++;
        const [{ now }] = await batched.dataSource.query<Array<{ now: Date }>>('SELECT now() AS now');
        const { messages, ids } = messagesOf(plan, now.getTime());
        const cuts = [...new Set(plan.cuts.map((cut) => cut % messages.length))].sort((a, b) => a - b);
        const bounds = [0, ...cuts, messages.length];
        const batches = bounds
          .slice(1)
          .map((end, i) => messages.slice(bounds[i], end))
          .filter((batch) => batch.length > 0);

        const inBatches = await handle(batched, batches);
        const oneByOne = await handle(
          alone,
          messages.map((message) => [message]),
        );

        const failed = (outcomes: Array<BatchResult<unknown>>) =>
          outcomes.flatMap((outcome, i) => (outcome.ok ? [] : [[i, outcome.error instanceof PoisonMessageError]]));
        // Only the poison fails, the same way both ways; it writes nothing, and the rest agree.
        const poison = messages.flatMap((m, i) => (m.transactionId === ids[plan.checkouts.length] ? [[i, true]] : []));
        expect(failed(oneByOne)).toEqual(poison);
        expect(failed(inBatches)).toEqual(poison);
        poisoned += poison.length;
        const [fromBatches, fromOneByOne] = await Promise.all([recorded(batched, ids), recorded(alone, ids)]);
        expect(fromBatches).toEqual(fromOneByOne);
        expect(fromBatches.states.map((state) => state.checkout)).toEqual(plan.checkouts.map((_, i) => i));
      }),
      { numRuns: 150 },
    );
    expect(runs).toBe(150);
    expect(poisoned).toBeGreaterThan(0);
  });
});

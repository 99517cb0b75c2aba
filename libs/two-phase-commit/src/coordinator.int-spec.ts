import { randomUUID } from 'node:crypto';
import { createMessage, Ack, CheckoutMessage, Inquiry, Vote, VotePayload } from '@shop/contracts';
import { PoisonMessageError, silentLogger } from '@shop/messaging';
import { Transactions } from '@shop/outbox';
import { asBatch, counting, handleAlone } from '../../../test/support/batches';
import { eventually } from '../../../test/support/eventually';
import { createTestSchema, TestSchema } from '../../../test/support/postgres';
import { AckRoundTrip } from './ack-round-trip';
import { Coordinator, CoordinatorMessage, COORDINATOR_MIGRATIONS, Decided } from './index';

const HOUR = 3_600_000;
/** The kit's own participant set, whatever services.json lists: these tests vote and ack for these. */
const PARTICIPANTS = ['inventory', 'payment'] as const;
/** This process's clock (`Date.now`) off by `offsetMs` from the real one (and the database's). */
function skewProcessClock(offsetMs: number): void {
  jest.restoreAllMocks();
  const real = Date.now.bind(Date);
  jest.spyOn(Date, 'now').mockImplementation(() => real() + offsetMs);
}

/** The protocol kit driven message by message against a real Postgres: no broker, exact order. */
describe('two-phase-commit kit on a real Postgres', () => {
  let schema: TestSchema;

  async function outbox(): Promise<CheckoutMessage[]> {
    const rows = await schema.dataSource.query<Array<{ body: CheckoutMessage }>>(`SELECT body FROM outbox ORDER BY id`);
    return rows.map((row) => row.body);
  }
  const sentSince = async (before: number) => (await outbox()).slice(before);

  describe('coordinator', () => {
    const decided: Array<{ id: string; outcome: string; reason: string | null }> = [];
    let coordinator: Coordinator<(typeof PARTICIPANTS)[number]>;
    let transactions: Transactions;
    let ackRoundTrip: AckRoundTrip;
    const handle = (message: CoordinatorMessage) => handleAlone(transactions, coordinator, message);

    beforeEach(async () => {
      schema = await createTestSchema('tpc_coordinator', COORDINATOR_MIGRATIONS);
      decided.length = 0;
      transactions = new Transactions(schema.dataSource);
      ackRoundTrip = new AckRoundTrip(60);
      coordinator = coordinatorAsking([]);
    });
    /** A coordinator over the test schema that asks in `stages` (none: all at once), recording its decisions. */
    const coordinatorAsking = (stages: ReadonlyArray<ReadonlyArray<(typeof PARTICIPANTS)[number]>>) =>
      new Coordinator({
        participants: PARTICIPANTS,
        stages,
        transactions,
        ackRoundTrip,
        logger: silentLogger,
        hooks: {
          onDecided: async (_unit, decisions: readonly Decided[]) => {
            decisions.forEach(({ transactionId: id, outcome, reason }) => decided.push({ id, outcome, reason }));
          },
        },
      });
    afterEach(() => schema.drop());

    async function begin(timeoutMs = 60_000): Promise<string> {
      const id = randomUUID();
      await transactions.run((unit) =>
        coordinator.begin(unit, {
          id,
          timeoutMs,
          requests: {
            inventory: { items: [{ sku: 'A', quantity: 1 }] },
            payment: { customerId: 'c1', amount: 100, currency: 'EUR' },
          },
        }),
      );
      return id;
    }
    const vote = (transactionId: string, sender: 'inventory' | 'payment', payload: VotePayload) =>
      createMessage(Vote, { transactionId, sender, recipient: 'order', payload });
    const inquiry = (transactionId: string) =>
      createMessage(Inquiry, {
        transactionId,
        sender: 'payment',
        recipient: 'order',
        payload: { preparedAt: new Date().toISOString() },
      });
    const ack = (transactionId: string, sender: 'inventory' | 'payment', outcome: 'commit' | 'abort') =>
      createMessage(Ack, { transactionId, sender, recipient: 'order', payload: { outcome } });
    /** Sessions of this database waiting for a lock. */
    const waitingOnLocks = async () =>
      (
        await schema.dataSource.query<Array<{ n: number }>>(
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
        )
      )[0].n;
    const state = async (id: string) =>
      (
        await schema.dataSource.query<Array<{ state: string; decision_reason: string | null; completed: boolean }>>(
          `SELECT state, decision_reason, completed_at IS NOT NULL AS completed FROM tpc_transactions WHERE id = $1`,
          [id],
        )
      )[0];

    it('sends one prepare per participant with the deadline', async () => {
      const id = await begin();
      const sent = await outbox();
      expect(sent.map((m) => [m.type, m.recipient])).toEqual([
        ['prepare', 'inventory'],
        ['prepare', 'payment'],
      ]);
      expect(sent.every((m) => m.transactionId === id)).toBe(true);
    });

    it('commits when all vote yes, decides once, and ignores a duplicate and a re-sent vote', async () => {
      const id = await begin();
      const before = (await outbox()).length;
      const inventoryYes = vote(id, 'inventory', { vote: 'yes' });
      await handle(inventoryYes);
      expect(await state(id)).toMatchObject({ state: 'PREPARING' });
      await handle(vote(id, 'payment', { vote: 'yes' }));
      await handle(inventoryYes); // same message id
      await handle(vote(id, 'inventory', { vote: 'yes' })); // re-sent copy
      expect(await state(id)).toMatchObject({ state: 'COMMITTED' });
      expect(decided).toEqual([{ id, outcome: 'commit', reason: null }]);
      const decisions = await sentSince(before);
      expect(decisions.map((m) => [m.type, m.recipient, m.payload])).toEqual([
        ['decision', 'inventory', { outcome: 'commit' }],
        ['decision', 'payment', { outcome: 'commit' }],
      ]);
    });

    it('aborts at the first no with its reason, to every participant but the no-voter, and sends nothing more for a late yes', async () => {
      const id = await begin();
      const before = (await outbox()).length;
      await handle(vote(id, 'payment', { vote: 'no', reason: 'INSUFFICIENT_FUNDS' }));
      expect(await state(id)).toMatchObject({ state: 'ABORTED', decision_reason: 'INSUFFICIENT_FUNDS' });
      // Payment voted no: it holds nothing and aborted on its own; the abort would tell it nothing.
      expect((await sentSince(before)).map((m) => [m.type, m.recipient, m.payload])).toEqual([
        ['decision', 'inventory', { outcome: 'abort', reason: 'INSUFFICIENT_FUNDS' }],
      ]);
      // The yes crossed the abort, which is on its way to it (lost, the inventory's inquiry is answered).
      const afterDecision = (await outbox()).length;
      await handle(vote(id, 'inventory', { vote: 'yes' }));
      expect(await sentSince(afterDecision)).toEqual([]);
      expect(decided).toHaveLength(1);
    });

    it('answers a yes for a transaction it never heard of with abort (presumed abort)', async () => {
      const id = randomUUID();
      await handle(vote(id, 'payment', { vote: 'yes' }));
      expect((await outbox()).map((m) => [m.type, m.recipient, m.transactionId, m.payload])).toEqual([
        ['decision', 'payment', id, { outcome: 'abort' }],
      ]);
    });

    it('completes the transaction when every participant acked, once', async () => {
      const id = await begin();
      await handle(vote(id, 'inventory', { vote: 'yes' }));
      await handle(vote(id, 'payment', { vote: 'yes' }));
      await handle(ack(id, 'inventory', 'commit'));
      expect(await state(id)).toMatchObject({ completed: false });
      await Promise.all([handle(ack(id, 'payment', 'commit')), handle(ack(id, 'payment', 'commit'))]);
      expect(await state(id)).toMatchObject({ completed: true });
    });

    it('completes an aborted checkout as it decides it: no ack awaited, nothing re-sent (presumed abort)', async () => {
      const id = await begin();
      await handle(vote(id, 'inventory', { vote: 'yes' }));
      await handle(vote(id, 'payment', { vote: 'no', reason: 'INSUFFICIENT_FUNDS' }));
      expect(await state(id)).toMatchObject({ state: 'ABORTED', completed: true });
      const before = (await outbox()).length;
      await schema.dataSource.query(`UPDATE tpc_participants SET next_resend_at = now() - interval '1 hour'`);
      expect(await coordinator.resendUnacked()).toBe(0);
      expect(await sentSince(before)).toEqual([]);
    });

    it('takes the ack of an abort from a participant of the older version, and ignores it (not poison, nothing recorded)', async () => {
      const id = await begin();
      await handle(vote(id, 'inventory', { vote: 'yes' }));
      await handle(vote(id, 'payment', { vote: 'no', reason: 'INSUFFICIENT_FUNDS' }));
      await handle(ack(id, 'inventory', 'abort'));
      await handle(ack(id, 'payment', 'abort'));
      const rows = await schema.dataSource.query<Array<{ acked: boolean }>>(
        `SELECT acked_at IS NOT NULL AS acked FROM tpc_participants WHERE transaction_id = $1`,
        [id],
      );
      expect(rows).toEqual([{ acked: false }, { acked: false }]);
      expect(await state(id)).toMatchObject({ state: 'ABORTED', completed: true });
    });

    it('completes an abort that an older coordinator left waiting for acks, instead of re-sending it', async () => {
      const [legacy, committed] = [await begin(), await begin()];
      await handle(vote(legacy, 'payment', { vote: 'no', reason: 'INSUFFICIENT_FUNDS' }));
      await handle(vote(committed, 'inventory', { vote: 'yes' }));
      await handle(vote(committed, 'payment', { vote: 'yes' }));
      // As the version before presumed abort left it: incomplete, its abort due to be re-sent to both.
      await schema.dataSource.query(`UPDATE tpc_transactions SET completed_at = NULL WHERE id = $1`, [legacy]);
      await schema.dataSource.query(`UPDATE tpc_participants SET next_resend_at = now() - interval '1 hour'`);
      const before = (await outbox()).length;
      expect(await coordinator.resendUnacked()).toBe(2); // the commit, to both
      expect((await sentSince(before)).map((m) => [m.transactionId, m.payload])).toEqual([
        [committed, { outcome: 'commit' }],
        [committed, { outcome: 'commit' }],
      ]);
      expect(await state(legacy)).toMatchObject({ state: 'ABORTED', completed: true });
      const due = await schema.dataSource.query(
        `SELECT participant FROM tpc_participants WHERE transaction_id = $1 AND next_resend_at IS NOT NULL`,
        [legacy],
      );
      expect(due).toEqual([]);
    });

    it('refuses an ack whose outcome is not the decision, and does not count it', async () => {
      const id = await begin();
      await handle(vote(id, 'inventory', { vote: 'yes' }));
      await handle(vote(id, 'payment', { vote: 'no', reason: 'INSUFFICIENT_FUNDS' }));
      await expect(handle(ack(id, 'inventory', 'commit'))).rejects.toBeInstanceOf(PoisonMessageError);
      const [row] = await schema.dataSource.query<Array<{ acked: boolean }>>(
        `SELECT acked_at IS NOT NULL AS acked FROM tpc_participants WHERE transaction_id = $1 AND participant = 'inventory'`,
        [id],
      );
      expect(row.acked).toBe(false);
    });

    describe('a batch of messages in one transaction', () => {
      it('locks its checkouts and records their votes in one statement each, deciding each checkout once', async () => {
        const [both, refused, halfway] = [await begin(), await begin(), await begin()];
        const unknown = randomUUID();
        const paymentYes = vote(both, 'payment', { vote: 'yes' });
        const { outcomes, statements } = await asBatch(transactions, coordinator, [
          vote(both, 'inventory', { vote: 'yes' }),
          paymentYes,
          paymentYes, // delivered twice
          vote(refused, 'inventory', { vote: 'no', reason: 'OUT_OF_STOCK' }),
          vote(refused, 'payment', { vote: 'yes' }),
          vote(halfway, 'payment', { vote: 'yes' }),
          vote(unknown, 'inventory', { vote: 'yes' }),
        ]);
        expect(outcomes.every(Boolean)).toBe(true);
        expect(decided).toEqual([
          { id: both, outcome: 'commit', reason: null },
          { id: refused, outcome: 'abort', reason: 'OUT_OF_STOCK' },
        ]);
        expect(await state(halfway)).toMatchObject({ state: 'PREPARING' });
        expect((await outbox()).filter((m) => m.transactionId === unknown).map((m) => m.payload)).toEqual([
          { outcome: 'abort' },
        ]);
        // The yes that came after the no hears only the abort the no's decision sent; the no-voter hears nothing.
        const refusedDecisions = (await outbox()).filter((m) => m.transactionId === refused && m.type === 'decision');
        expect(refusedDecisions.map((m) => m.recipient).sort()).toEqual(['payment']);
        // Whatever the batch's size: one lock and one vote statement (then one per decision).
        expect(counting(statements, /FOR UPDATE/)).toBe(1);
        expect(counting(statements, /SET vote = /)).toBe(1);
      });

      it('records its acks in one statement, completes the checkouts every participant acked, and fails only a wrong ack', async () => {
        const [committed, aborted] = [await begin(), await begin()];
        await handle(vote(committed, 'inventory', { vote: 'yes' }));
        await handle(vote(committed, 'payment', { vote: 'yes' }));
        await handle(vote(aborted, 'payment', { vote: 'no', reason: 'INSUFFICIENT_FUNDS' }));
        const together = await asBatch(transactions, coordinator, [
          ack(committed, 'inventory', 'commit'),
          ack(committed, 'payment', 'commit'),
          ack(aborted, 'inventory', 'abort'),
          ack(aborted, 'payment', 'abort'),
        ]);
        expect(together.outcomes).toEqual([true, true, true, true]);
        expect(counting(together.statements, /SET acked_at/)).toBe(1);
        expect(await state(committed)).toMatchObject({ completed: true });
        expect(await state(aborted)).toMatchObject({ completed: true });
        // The acks of the abort (a participant of the older version) are taken and record nothing.
        const abortAcks = await schema.dataSource.query(
          `SELECT participant FROM tpc_participants WHERE transaction_id = $1 AND acked_at IS NOT NULL`,
          [aborted],
        );
        expect(abortAcks).toEqual([]);

        const other = await begin();
        await handle(vote(other, 'inventory', { vote: 'yes' }));
        await handle(vote(other, 'payment', { vote: 'yes' }));
        const mixed = await asBatch(transactions, coordinator, [
          ack(other, 'inventory', 'abort'),
          ack(other, 'payment', 'commit'),
        ]);
        expect(mixed.outcomes).toEqual([false, true]); // the wrong one fails alone
        const acked = await schema.dataSource.query<Array<{ participant: string }>>(
          `SELECT participant FROM tpc_participants WHERE transaction_id = $1 AND acked_at IS NOT NULL`,
          [other],
        );
        expect(acked).toEqual([{ participant: 'payment' }]);
      });
    });

    it("takes an ack's round trip once it committed: a batch rolled back and run again counts it once (bug 6)", async () => {
      const id = await begin();
      await handle(vote(id, 'inventory', { vote: 'yes' }));
      await handle(vote(id, 'payment', { vote: 'yes' }));
      const samples: number[] = [];
      const observe = jest.spyOn(ackRoundTrip, 'observe').mockImplementation((seconds) => void samples.push(seconds));
      try {
        // The wrong ack fails its step: the batch rolls back and runs again without it.
        const { outcomes } = await asBatch(transactions, coordinator, [
          ack(id, 'inventory', 'commit'),
          ack(id, 'payment', 'abort'),
        ]);
        expect(outcomes).toEqual([true, false]);
        expect(samples).toHaveLength(1);
      } finally {
        observe.mockRestore();
      }
    });

    it('decides on the votes of two batches that wait on each other: the second reads what the first committed', async () => {
      const id = await begin();
      let release!: () => void;
      let holding!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const held = new Promise<void>((resolve) => (holding = resolve));
      // The first batch records inventory's yes and holds its transaction (and the checkout's lock) open.
      const first = transactions.runBatch([vote(id, 'inventory', { vote: 'yes' })], async (unit) => {
        await coordinator.handle(unit, unit.items);
        holding();
        await gate;
      });
      await held;
      const second = handle(vote(id, 'payment', { vote: 'yes' }));
      await eventually(async () => (await waitingOnLocks()) === 1, { what: 'the second batch waiting on the lock' });
      release();
      await first;
      await second;
      expect(await state(id)).toMatchObject({ state: 'COMMITTED' });
      expect(decided).toEqual([{ id, outcome: 'commit', reason: null }]);
    });

    it('aborts an undecided transaction past its deadline with TIMEOUT, once even with two sweepers', async () => {
      const late = await begin(-1);
      const onTime = await begin();
      const counts = await Promise.all([coordinator.abortExpired(), coordinator.abortExpired()]);
      expect(counts.reduce((a, b) => a + b, 0)).toBe(1);
      expect(await state(late)).toMatchObject({ state: 'ABORTED', decision_reason: 'TIMEOUT' });
      expect(await state(onTime)).toMatchObject({ state: 'PREPARING' });
      expect(decided).toEqual([{ id: late, outcome: 'abort', reason: 'TIMEOUT' }]);
    });

    it('re-sends an unacknowledged decision when due, and stops once acked', async () => {
      const id = await begin();
      await handle(vote(id, 'inventory', { vote: 'yes' }));
      await handle(vote(id, 'payment', { vote: 'yes' }));
      await handle(ack(id, 'inventory', 'commit'));
      await schema.dataSource.query(`UPDATE tpc_participants SET next_resend_at = now() - interval '1 second'`);
      const before = (await outbox()).length;
      expect(await coordinator.resendUnacked()).toBe(1);
      expect((await sentSince(before)).map((m) => [m.type, m.recipient, m.payload])).toEqual([
        ['decision', 'payment', { outcome: 'commit' }],
      ]);
      expect(await coordinator.resendUnacked()).toBe(0); // backoff: not due again yet
      await handle(ack(id, 'payment', 'commit'));
      await schema.dataSource.query(`UPDATE tpc_participants SET next_resend_at = now() - interval '1 second'`);
      expect(await coordinator.resendUnacked()).toBe(0);
    });

    it('answers an inquiry with the decision, an unknown one with abort, an expired one by deciding', async () => {
      const committed = await begin();
      await handle(vote(committed, 'inventory', { vote: 'yes' }));
      await handle(vote(committed, 'payment', { vote: 'yes' }));
      const expired = await begin(-1);
      const unknown = randomUUID();
      const before = (await outbox()).length;
      await handle(inquiry(committed));
      await handle(inquiry(unknown));
      await handle(inquiry(expired));
      expect((await sentSince(before)).map((m) => [m.transactionId, m.recipient, m.payload])).toEqual([
        [committed, 'payment', { outcome: 'commit' }],
        [unknown, 'payment', { outcome: 'abort' }],
        [expired, 'inventory', { outcome: 'abort', reason: 'TIMEOUT' }],
        [expired, 'payment', { outcome: 'abort', reason: 'TIMEOUT' }],
      ]);
    });

    it("stamps and compares the prepare deadline on the database's clock, whatever the process's says", async () => {
      try {
        skewProcessClock(+HOUR); // an hour ahead: nothing may time out early
        const onTime = await begin(60_000);
        const [{ left }] = await schema.dataSource.query<Array<{ left: number }>>(
          `SELECT extract(epoch FROM deadline - now())::float AS left FROM tpc_transactions WHERE id = $1`,
          [onTime],
        );
        expect(left).toBeGreaterThan(50);
        expect(left).toBeLessThanOrEqual(60);
        await handle(inquiry(onTime));
        expect(await coordinator.abortExpired()).toBe(0);
        expect(await state(onTime)).toMatchObject({ state: 'PREPARING' });

        skewProcessClock(-HOUR); // an hour behind: a passed deadline still decides
        const late = await begin(-1);
        await handle(inquiry(late));
        expect(await state(late)).toMatchObject({ state: 'ABORTED', decision_reason: 'TIMEOUT' });
      } finally {
        jest.restoreAllMocks();
      }
      expect(decided.map((d) => d.reason)).toEqual(['TIMEOUT']);
    });

    describe('in stages (payment first: money before stock)', () => {
      beforeEach(() => {
        coordinator = coordinatorAsking([['payment']]);
      });
      const held = async (id: string) =>
        (
          await schema.dataSource.query<Array<{ participant: string }>>(
            `SELECT participant FROM tpc_held_prepares WHERE transaction_id = $1`,
            [id],
          )
        ).map((row) => row.participant);
      const asked = async (id: string) =>
        (
          await schema.dataSource.query<Array<{ participant: string }>>(
            `SELECT participant FROM tpc_participants WHERE transaction_id = $1 ORDER BY participant`,
            [id],
          )
        ).map((row) => row.participant);

      it("asks payment only; at its yes, asks the inventory with the same deadline and the database's now", async () => {
        const id = await begin();
        const [first] = (await outbox()) as Array<CheckoutMessage & { payload: { deadline: string } }>;
        expect((await outbox()).map((m) => [m.type, m.recipient])).toEqual([['prepare', 'payment']]);
        expect(await held(id)).toEqual(['inventory']);
        expect(await asked(id)).toEqual(['payment']);

        await handle(vote(id, 'payment', { vote: 'yes' }));
        const [second] = await sentSince(1);
        expect(second).toMatchObject({
          type: 'prepare',
          recipient: 'inventory',
          payload: { participant: 'inventory', deadline: first.payload.deadline, items: [{ sku: 'A', quantity: 1 }] },
        });
        expect(Date.parse(second.sentAt)).toBeGreaterThanOrEqual(Date.parse(first.sentAt));
        expect(await held(id)).toEqual([]);
        expect(await asked(id)).toEqual(['inventory', 'payment']);
        expect(await state(id)).toMatchObject({ state: 'PREPARING' });

        await handle(vote(id, 'inventory', { vote: 'yes' }));
        expect(await state(id)).toMatchObject({ state: 'COMMITTED' });
        await handle(ack(id, 'payment', 'commit'));
        await handle(ack(id, 'inventory', 'commit'));
        expect(await state(id)).toMatchObject({ state: 'COMMITTED', completed: true });
      });

      it("aborts at payment's no without ever asking the inventory: neither is told, and the checkout completes there", async () => {
        const id = await begin();
        await handle(vote(id, 'payment', { vote: 'no', reason: 'INSUFFICIENT_FUNDS' }));
        // A declined payment: one prepare and one vote, nothing more (payment voted no; inventory was never asked).
        expect(await sentSince(1)).toEqual([]);
        expect(await held(id)).toEqual([]);
        expect(await asked(id)).toEqual(['payment']);
        expect(await state(id)).toMatchObject({ state: 'ABORTED', completed: true });
        await handle(ack(id, 'payment', 'abort')); // from a payment of the older version: harmless
        expect(await state(id)).toMatchObject({ state: 'ABORTED', completed: true });
        await schema.dataSource.query(`UPDATE tpc_participants SET next_resend_at = now() - interval '1 second'`);
        expect(await coordinator.resendUnacked()).toBe(0);
      });

      it('takes a vote or an ack from the inventory before it was asked as poison', async () => {
        const id = await begin();
        await expect(handle(vote(id, 'inventory', { vote: 'yes' }))).rejects.toThrow(PoisonMessageError);
        expect(await state(id)).toMatchObject({ state: 'PREPARING' });
      });

      it('drops the held prepare when the deadline passes first (TIMEOUT to payment only)', async () => {
        const id = await begin(-1);
        expect(await coordinator.abortExpired()).toBe(1);
        expect(await held(id)).toEqual([]);
        expect((await sentSince(1)).map((m) => [m.type, m.recipient])).toEqual([['decision', 'payment']]);
      });
    });
  });
});

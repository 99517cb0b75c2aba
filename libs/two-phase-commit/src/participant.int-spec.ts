import { randomUUID } from 'node:crypto';
import {
  CheckoutMessage,
  createMessage,
  Decision,
  MessageOfType,
  Prepare,
  PreparePayload,
  VoteOf,
} from '@shop/contracts';
import { OutgoingMessage, PoisonMessageError, silentLogger } from '@shop/messaging';
import { Transactions, UnitOfWork } from '@shop/outbox';
import { asBatch as batchOf, counting, handleAlone as aloneOf } from '../../../test/support/batches';
import { createTestSchema, TestSchema } from '../../../test/support/postgres';
import { CreateParticipantTables1764000000200, Participant, ParticipantMessage, ParticipantResource } from './index';

const HOUR = 3_600_000;
/** This process's clock (`Date.now`) off by `offsetMs` from the real one (and the database's). */
function skewProcessClock(offsetMs: number): void {
  jest.restoreAllMocks();
  const real = Date.now.bind(Date);
  jest.spyOn(Date, 'now').mockImplementation(() => real() + offsetMs);
}

/** The participant driven batch by batch against a real Postgres: no broker, exact order. */
describe('participant', () => {
  let schema: TestSchema;
  let transactions: Transactions;
  /** What the committed units handed to the broker's fast path. */
  const published: OutgoingMessage[] = [];
  const calls: string[] = [];
  let answer: VoteOf<'payment'>;
  let participant: Participant<'payment'>;

  /** Each call the resource was asked, with its checkouts. */
  const asked: string[] = [];
  /**
   * A resource that writes a row per checkout, so rollbacks are visible; it votes `answer` on
   * each prepare and, as the contract asks, writes nothing for a no.
   */
  const resource: ParticipantResource<'payment'> = {
    async prepare(unit, prepares) {
      const ids = prepares.map(({ transactionId }) => transactionId);
      asked.push(`prepare ${ids.join(' ')}`);
      calls.push(...ids.map((id) => `prepare ${id}`));
      if (answer.vote === 'yes') await effect(unit, ids, 'held');
      return ids.map(() => answer);
    },
    async commit(unit, ids) {
      asked.push(`commit ${ids.join(' ')}`);
      calls.push(...ids.map((id) => `commit ${id}`));
      await effect(unit, ids, 'captured');
    },
    async abort(unit, ids) {
      asked.push(`abort ${ids.join(' ')}`);
      calls.push(...ids.map((id) => `abort ${id}`));
      await effect(unit, ids, 'released');
    },
  };
  const effect = (unit: UnitOfWork<unknown>, ids: readonly string[], what: string) =>
    unit.manager.query(`INSERT INTO effects SELECT unnest($1::uuid[]), $2`, [ids, what]);
  const participantWith = (own: ParticipantResource<'payment'>) =>
    new Participant({ name: 'payment', resource: own, transactions, logger: silentLogger });

  beforeEach(async () => {
    schema = await createTestSchema('tpc_participant', [CreateParticipantTables1764000000200]);
    await schema.dataSource.query(`CREATE TABLE effects (transaction_id uuid, what text)`);
    transactions = new Transactions(schema.dataSource, { publishCommitted: (messages) => published.push(...messages) });
    published.length = 0;
    calls.length = 0;
    asked.length = 0;
    answer = { vote: 'yes' };
    participant = participantWith(resource);
  });
  afterEach(() => schema.drop());

  async function outbox(): Promise<CheckoutMessage[]> {
    const rows = await schema.dataSource.query<Array<{ body: CheckoutMessage }>>(`SELECT body FROM outbox ORDER BY id`);
    return rows.map((row) => row.body);
  }

  /** The shared batch helpers (test/support/batches.ts), with this suite's participant by default. */
  const asBatch = (messages: ParticipantMessage[], by = participant) => batchOf(transactions, by, messages);
  const handleAlone = (message: ParticipantMessage, by = participant) => aloneOf(transactions, by, message);

  const prepare = (
    transactionId: string,
    deadline = new Date(Date.now() + 60_000),
    sentAt = new Date(),
  ): MessageOfType<'prepare'> => ({
    ...createMessage(Prepare, {
      transactionId,
      sender: 'order',
      recipient: 'payment',
      payload: {
        participant: 'payment',
        deadline: deadline.toISOString(),
        customerId: 'c1',
        amount: 100,
        currency: 'EUR',
      } satisfies PreparePayload,
    }),
    sentAt: sentAt.toISOString(),
  });
  const decision = (transactionId: string, outcome: 'commit' | 'abort') =>
    createMessage(Decision, { transactionId, sender: 'order', recipient: 'payment', payload: { outcome } });
  const stateOf = async (id: string) =>
    (
      await schema.dataSource.query<Array<{ state: string }>>(
        `SELECT state FROM tpc_participant_transactions WHERE transaction_id = $1`,
        [id],
      )
    )[0]?.state;
  const effects = async (id: string) =>
    (
      await schema.dataSource.query<Array<{ what: string }>>(`SELECT what FROM effects WHERE transaction_id = $1`, [id])
    ).map((row) => row.what);
  const replies = async () => (await outbox()).map((m) => [m.type, m.payload]);
  const databaseNow = async () =>
    (await schema.dataSource.query<Array<{ now: Date }>>('SELECT now() AS now'))[0].now.getTime();

  it('prepares once, answers a re-sent prepare with the same vote, commits once, re-acks a re-sent decision', async () => {
    const id = randomUUID();
    const first = prepare(id);
    await handleAlone(first);
    await handleAlone(first); // duplicate delivery
    await handleAlone(prepare(id)); // re-sent copy
    expect(await stateOf(id)).toBe('PREPARED');
    await handleAlone(decision(id, 'commit'));
    await handleAlone(decision(id, 'commit'));
    expect(calls).toEqual([`prepare ${id}`, `commit ${id}`]);
    expect(await effects(id)).toEqual(['held', 'captured']);
    expect(await replies()).toEqual([
      ['vote', { vote: 'yes' }],
      ['vote', { vote: 'yes' }],
      ['ack', { outcome: 'commit' }],
      ['ack', { outcome: 'commit' }],
    ]);
  });

  it('records a refusing prepare, and aborts it without calling the resource', async () => {
    const id = randomUUID();
    answer = { vote: 'no', reason: 'INSUFFICIENT_FUNDS' };
    await handleAlone(prepare(id));
    expect(await stateOf(id)).toBe('REFUSED');
    expect(await effects(id)).toEqual([]);
    await handleAlone(decision(id, 'abort'));
    expect(await stateOf(id)).toBe('ABORTED');
    expect(calls).toEqual([`prepare ${id}`]);
    // Presumed abort: the abort is not acked.
    expect(await replies()).toEqual([['vote', { vote: 'no', reason: 'INSUFFICIENT_FUNDS' }]]);
  });

  it('releases a prepared checkout at its abort, and a re-sent copy, without acking either (presumed abort)', async () => {
    const id = randomUUID();
    await handleAlone(prepare(id));
    await handleAlone(decision(id, 'abort'));
    await handleAlone(decision(id, 'abort')); // a copy (published twice, or an inquiry answered)
    expect(await stateOf(id)).toBe('ABORTED');
    expect(calls).toEqual([`prepare ${id}`, `abort ${id}`]);
    expect(await effects(id)).toEqual(['held', 'released']);
    expect(await replies()).toEqual([['vote', { vote: 'yes' }]]);
  });

  it('leaves a tombstone for an abort that comes before its prepare; the late prepare votes no and holds nothing', async () => {
    const id = randomUUID();
    await handleAlone(decision(id, 'abort'));
    expect(await stateOf(id)).toBe('ABORTED');
    await handleAlone(prepare(id));
    expect(calls).toEqual([]);
    expect(await effects(id)).toEqual([]);
    expect(await replies()).toEqual([['vote', { vote: 'no', reason: 'ALREADY_ABORTED' }]]);
  });

  it('votes no on a prepare whose deadline passed', async () => {
    const id = randomUUID();
    const sentAt = new Date(await databaseNow()); // the coordinator stamps it on the database's clock
    await handleAlone(prepare(id, new Date(sentAt.getTime() - 1), sentAt));
    expect(calls).toEqual([]);
    expect(await replies()).toEqual([['vote', { vote: 'no', reason: 'DEADLINE_PASSED' }]]);
  });

  it("compares the deadline with the database's clock, not the process's", async () => {
    const now = await databaseNow();
    const [onTime, late] = [randomUUID(), randomUUID()];
    try {
      skewProcessClock(+HOUR);
      await handleAlone(prepare(onTime, new Date(now + 60_000), new Date(now)));
      skewProcessClock(-HOUR);
      await handleAlone(prepare(late, new Date(now - 1_000), new Date(now)));
    } finally {
      jest.restoreAllMocks();
    }
    expect(calls).toEqual([`prepare ${onTime}`]);
    expect(await replies()).toEqual([
      ['vote', { vote: 'yes' }],
      ['vote', { vote: 'no', reason: 'DEADLINE_PASSED' }],
    ]);
  });

  describe("with the coordinator's database clock 20 s off this one's (a database per service)", () => {
    it.each([
      ['behind', -20_000],
      ['ahead', +20_000],
    ])("judges each deadline by the coordinator's clock when it is %s", async (_, skewMs) => {
      const coordinatorNow = (await databaseNow()) + skewMs; // as the coordinator stamps deadline and sentAt
      const [onTime, late, alsoOnTime] = [randomUUID(), randomUUID(), randomUUID()];
      const sentNow = new Date(coordinatorNow);
      await handleAlone(prepare(onTime, new Date(coordinatorNow + 15_000), sentNow));
      await handleAlone(prepare(late, new Date(coordinatorNow - 1_000), sentNow));
      await handleAlone(prepare(alsoOnTime, new Date(coordinatorNow + 10_000), sentNow));
      expect(calls).toEqual([`prepare ${onTime}`, `prepare ${alsoOnTime}`]);
      expect(await replies()).toEqual([
        ['vote', { vote: 'yes' }],
        ['vote', { vote: 'no', reason: 'DEADLINE_PASSED' }],
        ['vote', { vote: 'yes' }],
      ]);
    });

    it('judges a prepare that waited in a queue past its deadline by the offset a prompt one showed', async () => {
      const coordinatorNow = (await databaseNow()) - 20_000;
      const [prompt, delayed] = [randomUUID(), randomUUID()];
      const sentLongAgo = coordinatorNow - 30_000; // its deadline passed 15 s ago on the coordinator's clock
      const { outcomes } = await asBatch([
        prepare(prompt, new Date(coordinatorNow + 15_000), new Date(coordinatorNow)),
        prepare(delayed, new Date(sentLongAgo + 15_000), new Date(sentLongAgo)),
      ]);
      expect(outcomes).toEqual([true, true]);
      expect(calls).toEqual([`prepare ${prompt}`]);
      expect(await stateOf(delayed)).toBe('REFUSED');
    });
  });

  it('refuses a commit for a transaction it never prepared, writing nothing', async () => {
    const id = randomUUID();
    await expect(handleAlone(decision(id, 'commit'))).rejects.toBeInstanceOf(PoisonMessageError);
    expect(await stateOf(id)).toBeUndefined();
    expect(await replies()).toEqual([]);
  });

  it('applies concurrent copies of a decision once', async () => {
    const id = randomUUID();
    await handleAlone(prepare(id));
    await Promise.all(Array.from({ length: 5 }, () => handleAlone(decision(id, 'abort'))));
    expect(calls).toEqual([`prepare ${id}`, `abort ${id}`]);
    expect(await effects(id)).toEqual(['held', 'released']);
  });

  it('in a batch, locks (inserting the new) every checkout and writes the new states in one statement each, in delivery order per checkout', async () => {
    const [fresh, other, prepared, overtaken] = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
    await handleAlone(prepare(prepared));
    const commit = decision(prepared, 'commit');
    const { outcomes, statements } = await asBatch([
      prepare(fresh),
      prepare(other),
      commit,
      commit, // delivered twice
      decision(prepared, 'commit'), // a re-sent copy
      decision(overtaken, 'abort'), // the abort overtook its prepare
      prepare(overtaken),
    ]);
    expect(outcomes.every(Boolean)).toBe(true);
    expect(await stateOf(fresh)).toBe('PREPARED');
    expect(await stateOf(other)).toBe('PREPARED');
    expect(await stateOf(prepared)).toBe('COMMITTED');
    expect(await stateOf(overtaken)).toBe('ABORTED');
    expect(calls).toEqual([`prepare ${prepared}`, `commit ${prepared}`, `prepare ${fresh}`, `prepare ${other}`]);
    expect(await effects(overtaken)).toEqual([]);
    const sent = (await outbox()).slice(1);
    expect(sent.filter((m) => m.transactionId === overtaken).map((m) => [m.type, m.payload])).toEqual([
      ['vote', { vote: 'no', reason: 'ALREADY_ABORTED' }],
    ]);
    expect(sent.filter((m) => m.transactionId === prepared).map((m) => [m.type, m.payload])).toEqual([
      ['ack', { outcome: 'commit' }],
      ['ack', { outcome: 'commit' }],
    ]);
    // Whatever the batch's size: one inbox record, one lock of every checkout, no lock per message, one write.
    expect(counting(statements, /INSERT INTO inbox/)).toBe(1);
    expect(counting(statements, /INSERT INTO tpc_participant_transactions/)).toBe(1);
    expect(counting(statements, /FOR UPDATE/)).toBe(0);
    expect(counting(statements, /UPDATE tpc_participant_transactions/)).toBe(1);
    expect(counting(statements, /INSERT INTO outbox/)).toBe(1);
  });

  it('sets a failing message aside and handles the rest of its batch together', async () => {
    const [good, poisoned, alsoGood] = [randomUUID(), randomUUID(), randomUUID()];
    const { outcomes } = await asBatch([prepare(good), decision(poisoned, 'commit'), prepare(alsoGood)]);
    expect(outcomes).toEqual([true, false, true]);
    expect([await stateOf(good), await stateOf(poisoned), await stateOf(alsoGood)]).toEqual([
      'PREPARED',
      undefined,
      'PREPARED',
    ]);
    expect((await outbox()).map((m) => [m.transactionId, m.type])).toEqual([
      [good, 'vote'],
      [alsoGood, 'vote'],
    ]);
  });

  it('asks the resource once per kind of work in a batch: a batch of any size costs the same statements', async () => {
    const [committed, aborted] = [randomUUID(), randomUUID()];
    await handleAlone(prepare(committed));
    await handleAlone(prepare(aborted));
    asked.length = 0;
    const few = [randomUUID()];
    const many = Array.from({ length: 8 }, () => randomUUID());
    const small = await asBatch([...few.map((id) => prepare(id))]);
    const large = await asBatch([
      ...many.map((id) => prepare(id)),
      decision(committed, 'commit'),
      decision(aborted, 'abort'),
    ]);
    expect(small.outcomes.every(Boolean) && large.outcomes.every(Boolean)).toBe(true);
    expect(asked).toEqual([
      `prepare ${few[0]}`,
      `abort ${aborted}`,
      `commit ${committed}`,
      `prepare ${many.join(' ')}`,
    ]);
    // The kit's own statements are the same for 1 message and for 10; the resource's, a call each.
    const resourceStatements = (statements: string[]) => counting(statements, /effects/);
    expect(large.statements.length - resourceStatements(large.statements)).toBe(
      small.statements.length - resourceStatements(small.statements),
    );
    expect(resourceStatements(large.statements)).toBe(3);
    expect(counting([...small.statements, ...large.statements], /SAVEPOINT/)).toBe(0);
  });

  it('has the resource lock the rows of a batch of more than one resource call, before any message of it', async () => {
    const locked: Array<{ prepares: string[]; decided: string[] }> = [];
    const order: string[] = [];
    const locking = participantWith({
      ...resource,
      async lock(unit: UnitOfWork<unknown>, batch) {
        order.push('lock');
        locked.push({ prepares: batch.prepares.map((p) => p.transactionId), decided: [...batch.decided] });
      },
      async prepare(unit, prepares) {
        order.push('prepare');
        return resource.prepare(unit, prepares);
      },
    });
    const [a, b, known] = [randomUUID(), randomUUID(), randomUUID()];
    await handleAlone(prepare(known), locking); // one call alone: no lock
    await asBatch([prepare(a), prepare(b), prepare(known), decision(known, 'commit')], locking);
    expect(locked).toEqual([{ prepares: [a, b], decided: [known] }]);
    expect(order).toEqual(['prepare', 'lock', 'prepare']);
  });

  it('asks the coordinator about transactions it has held prepared too long, at a bounded rate', async () => {
    const inDoubt = randomUUID();
    const fresh = randomUUID();
    await handleAlone(prepare(inDoubt));
    await handleAlone(prepare(fresh));
    await schema.dataSource.query(
      `UPDATE tpc_participant_transactions SET prepared_at = now() - interval '1 hour' WHERE transaction_id = $1`,
      [inDoubt],
    );
    expect(await participant.inquireInDoubt(60_000, 60_000)).toBe(1);
    expect(await participant.inquireInDoubt(60_000, 60_000)).toBe(0);
    const inquiries = (await outbox()).filter((m) => m.type === 'inquiry');
    expect(inquiries.map((m) => [m.transactionId, m.recipient])).toEqual([[inDoubt, 'order']]);
  });
});

import { randomUUID } from 'node:crypto';
import { Transactions, UnitOfWork } from '@shop/outbox';
import { createTestSchema, TestSchema } from '../../../test/support/postgres';
import { Inbox } from './index';

describe('inbox on a real Postgres', () => {
  let schema: TestSchema;
  let transactions: Transactions;
  beforeEach(async () => {
    schema = await createTestSchema('inbox');
    transactions = new Transactions(schema.dataSource);
    await schema.dataSource.query(`CREATE TABLE effects (message_id uuid NOT NULL)`);
  });
  afterEach(() => schema.drop());

  const effects = async () =>
    (await schema.dataSource.query<Array<{ count: number }>>(`SELECT count(*)::int AS count FROM effects`))[0].count;
  const record = (messageId: string) => (unit: UnitOfWork) =>
    unit.manager.query(`INSERT INTO effects VALUES ($1)`, [messageId]);
  /** A handler run once per message id, as a consumer runs it: the record and its effect in one unit. */
  const handleOnce = (inbox: Inbox, messageId: string, work: (unit: UnitOfWork) => Promise<unknown>) =>
    transactions.run(async (unit) => {
      if (!(await inbox.record(unit, [messageId])).has(messageId)) return { duplicate: true };
      await work(unit);
      return { duplicate: false };
    });

  it('runs a handler once for a message delivered twice', async () => {
    const inbox = new Inbox(schema.dataSource, 'payment.prepare');
    const id = randomUUID();
    expect(await handleOnce(inbox, id, record(id))).toMatchObject({ duplicate: false });
    expect(await handleOnce(inbox, id, record(id))).toEqual({ duplicate: true });
    expect(await effects()).toBe(1);
  });

  it('runs a handler once when the same message arrives on 10 connections at the same moment', async () => {
    const inbox = new Inbox(schema.dataSource, 'payment.prepare');
    const id = randomUUID();
    const outcomes = await Promise.all(Array.from({ length: 10 }, () => handleOnce(inbox, id, record(id))));
    expect(outcomes.filter((o) => !o.duplicate)).toHaveLength(1);
    expect(await effects()).toBe(1);
  });

  it('forgets a message whose handler failed, so a retry runs it', async () => {
    const inbox = new Inbox(schema.dataSource, 'payment.prepare');
    const id = randomUUID();
    await expect(
      handleOnce(inbox, id, async (unit) => {
        await record(id)(unit);
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(await effects()).toBe(0);
    expect(await handleOnce(inbox, id, record(id))).toMatchObject({ duplicate: false });
    expect(await effects()).toBe(1);
  });

  it('keeps consumers apart: one message may be handled once by each', async () => {
    const id = randomUUID();
    await handleOnce(new Inbox(schema.dataSource, 'a'), id, record(id));
    expect(await handleOnce(new Inbox(schema.dataSource, 'b'), id, record(id))).toMatchObject({ duplicate: false });
    expect(await effects()).toBe(2);
  });

  it("records a batch's messages together: each first time once, a repeated id and an old one as duplicates", async () => {
    const inbox = new Inbox(schema.dataSource, 'payment.prepare');
    const [a, b, old] = [randomUUID(), randomUUID(), randomUUID()];
    await handleOnce(inbox, old, async () => undefined);
    const statements: string[] = [];
    const firstTime = await transactions.run(async (unit) => {
      const query = unit.manager.query.bind(unit.manager);
      unit.manager.query = (sql: string, parameters?: unknown[]) => {
        statements.push(sql);
        return query(sql, parameters);
      };
      return inbox.record(unit, [a, b, a, old]);
    });
    expect([...firstTime].sort()).toEqual([a, b].sort());
    expect(statements.filter((sql) => /INSERT INTO inbox/.test(sql))).toHaveLength(1);
    const [{ count }] = await schema.dataSource.query<Array<{ count: number }>>(
      `SELECT count(*)::int AS count FROM inbox WHERE consumer = 'payment.prepare'`,
    );
    expect(count).toBe(3);
  });

  it('prunes records past retention', async () => {
    const inbox = new Inbox(schema.dataSource, 'a');
    await handleOnce(inbox, randomUUID(), async () => undefined);
    await schema.dataSource.query(`UPDATE inbox SET processed_at = now() - interval '8 days'`);
    await handleOnce(inbox, randomUUID(), async () => undefined);
    expect(await inbox.prune(7 * 24 * 3600_000)).toBe(1);
  });
});

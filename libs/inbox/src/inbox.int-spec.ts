import { randomUUID } from 'node:crypto';
import { createTestSchema, TestSchema } from '../../../test/support/postgres';
import { Transactions } from '@shop/outbox';
import { Inbox } from './index';

describe('inbox on a real Postgres', () => {
  let schema: TestSchema;
  beforeEach(async () => {
    schema = await createTestSchema('inbox');
    await schema.dataSource.query(`CREATE TABLE effects (message_id uuid NOT NULL)`);
  });
  afterEach(() => schema.drop());

  const effects = async () =>
    (await schema.dataSource.query<Array<{ count: number }>>(`SELECT count(*)::int AS count FROM effects`))[0].count;
  const record = (messageId: string) => (manager: import('typeorm').EntityManager) =>
    manager.query(`INSERT INTO effects VALUES ($1)`, [messageId]);

  it('runs a handler once for a message delivered twice', async () => {
    const inbox = new Inbox(schema.dataSource, 'payment.prepare');
    const id = randomUUID();
    expect(await inbox.handleOnce(id, record(id))).toMatchObject({ duplicate: false });
    expect(await inbox.handleOnce(id, record(id))).toEqual({ duplicate: true });
    expect(await effects()).toBe(1);
  });

  it('runs a handler once when the same message arrives on 10 connections at the same moment', async () => {
    const inbox = new Inbox(schema.dataSource, 'payment.prepare');
    const id = randomUUID();
    const outcomes = await Promise.all(Array.from({ length: 10 }, () => inbox.handleOnce(id, record(id))));
    expect(outcomes.filter((o) => !o.duplicate)).toHaveLength(1);
    expect(await effects()).toBe(1);
  });

  it('forgets a message whose handler failed, so a retry runs it', async () => {
    const inbox = new Inbox(schema.dataSource, 'payment.prepare');
    const id = randomUUID();
    await expect(
      inbox.handleOnce(id, async (manager) => {
        await record(id)(manager);
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(await effects()).toBe(0);
    expect(await inbox.handleOnce(id, record(id))).toMatchObject({ duplicate: false });
    expect(await effects()).toBe(1);
  });

  it('keeps consumers apart: one message may be handled once by each', async () => {
    const id = randomUUID();
    await new Inbox(schema.dataSource, 'a').handleOnce(id, record(id));
    expect(await new Inbox(schema.dataSource, 'b').handleOnce(id, record(id))).toMatchObject({ duplicate: false });
    expect(await effects()).toBe(2);
  });

  it("records a batch's messages together: each first time once, a repeated id and an old one as duplicates", async () => {
    const inbox = new Inbox(schema.dataSource, 'payment.prepare');
    const [a, b, old] = [randomUUID(), randomUUID(), randomUUID()];
    await inbox.handleOnce(old, async () => undefined);
    const batch = [a, b, a, old].map((messageId) => ({ messageId }));
    const answers: boolean[] = [];
    await new Transactions(schema.dataSource).runBatch(batch, async (unit) => {
      for (const { messageId } of unit.items) answers.push(await inbox.recordIn(unit, messageId));
    });
    const firstTime = answers;
    expect(firstTime).toEqual([true, true, false, false]);
    const [{ count }] = await schema.dataSource.query<Array<{ count: number }>>(
      `SELECT count(*)::int AS count FROM inbox WHERE consumer = 'payment.prepare'`,
    );
    expect(count).toBe(3);
  });

  it('prunes records past retention', async () => {
    const inbox = new Inbox(schema.dataSource, 'a');
    await inbox.handleOnce(randomUUID(), async () => undefined);
    await schema.dataSource.query(`UPDATE inbox SET processed_at = now() - interval '8 days'`);
    await inbox.handleOnce(randomUUID(), async () => undefined);
    expect(await inbox.prune(7 * 24 * 3600_000)).toBe(1);
  });
});

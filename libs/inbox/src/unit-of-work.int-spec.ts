import { createTestSchema, TestSchema } from '../../../test/support/postgres';
import { inOneTransaction } from './unit-of-work';

/** A batch of messages in one transaction, each alone when one fails, on a real Postgres. */
describe('inOneTransaction', () => {
  let schema: TestSchema;

  beforeAll(async () => {
    schema = await createTestSchema('batch');
    // Deferred: a duplicate passes each statement and fails the whole transaction at COMMIT.
    await schema.dataSource.query(
      `CREATE TABLE effects (n int NOT NULL, CONSTRAINT one_each UNIQUE (n) DEFERRABLE INITIALLY DEFERRED)`,
    );
  });
  afterAll(() => schema?.drop());
  beforeEach(() => schema.dataSource.query(`TRUNCATE effects`));

  const effects = async () =>
    (await schema.dataSource.query<Array<{ n: number }>>(`SELECT n FROM effects ORDER BY n`)).map((row) => row.n);

  it('runs the items of a batch in one transaction', async () => {
    const results = await inOneTransaction(schema.dataSource, [1, 2, 3], async (n, unit) => {
      await unit.manager.query(`INSERT INTO effects VALUES ($1)`, [n]);
      const [{ id }] = await unit.manager.query<Array<{ id: string }>>(`SELECT txid_current()::text AS id`);
      return id;
    });
    expect(new Set(results.map((result) => result.ok && result.value)).size).toBe(1);
    expect(await effects()).toEqual([1, 2, 3]);
  });

  it('commits the others once when an item fails, after-commit callbacks included, and the failing one not at all', async () => {
    const committed: number[] = [];
    const results = await inOneTransaction(schema.dataSource, [1, 2, 3], async (n, unit) => {
      await unit.manager.query(`INSERT INTO effects VALUES ($1)`, [n]);
      unit.afterCommit(() => committed.push(n));
      if (n === 2) throw new Error('item 2 refused');
      return n * 10;
    });
    expect(results).toEqual([
      { ok: true, value: 10 },
      { ok: false, error: new Error('item 2 refused') },
      { ok: true, value: 30 },
    ]);
    expect(await effects()).toEqual([1, 3]);
    expect(committed).toEqual([1, 3]);
  });

  it('goes on after an item whose statement failed (which aborted the shared transaction)', async () => {
    const results = await inOneTransaction(schema.dataSource, [1, 2], async (n, unit) => {
      if (n === 1) await unit.manager.query(`SELECT 1 / 0`);
      await unit.manager.query(`INSERT INTO effects VALUES ($1)`, [n]);
    });
    expect(results.map((r) => r.ok)).toEqual([false, true]);
    expect(await effects()).toEqual([2]);
  });

  it('runs each item alone when the batch cannot commit, so the others do not depend on the one that broke it', async () => {
    const committed: number[] = [];
    const results = await inOneTransaction(schema.dataSource, [7, 7, 8], async (n, unit) => {
      await unit.manager.query(`INSERT INTO effects VALUES ($1)`, [n]);
      unit.afterCommit(() => committed.push(n));
    });
    expect(results.map((r) => r.ok)).toEqual([true, false, true]);
    expect(await effects()).toEqual([7, 8]);
    expect(committed).toEqual([7, 8]);
  });
});

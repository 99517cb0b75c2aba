import { createTestSchema, TestSchema } from '../../../test/support/postgres';
import { CommitOutcomeUnknownError, Transactions, UnitOfWork } from './unit-of-work';

/** Units of work on a real Postgres: a batch in one transaction, a failing item set aside, a lost COMMIT reply. */
describe('Transactions', () => {
  let schema: TestSchema;
  let transactions: Transactions;
  const published: string[][] = [];

  beforeAll(async () => {
    schema = await createTestSchema('batch');
    // Deferred: a duplicate passes each statement and fails the whole transaction at COMMIT.
    await schema.dataSource.query(
      `CREATE TABLE effects (n int NOT NULL, CONSTRAINT one_each UNIQUE (n) DEFERRABLE INITIALLY DEFERRED)`,
    );
    transactions = new Transactions(schema.dataSource, {
      publishCommitted: (messages) => published.push(messages.map((message) => message.messageId)),
    });
  });
  afterAll(() => schema?.drop());
  beforeEach(async () => {
    published.length = 0;
    await schema.dataSource.query(`TRUNCATE effects, outbox`);
  });

  const effects = async () =>
    (await schema.dataSource.query<Array<{ n: number }>>(`SELECT n FROM effects ORDER BY n`)).map((row) => row.n);
  const outboxIds = async () =>
    (await schema.dataSource.query<Array<{ message_id: string }>>(`SELECT message_id FROM outbox ORDER BY id`)).map(
      (row) => row.message_id,
    );
  const message = (n: number) => ({
    messageId: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
    type: 'test',
    routingKey: 'test',
    body: { n },
  });
  /** Runs `each` per item, in its step: what the transport and the shared request transaction do. */
  const eachInStep =
    <T, R>(each: (item: T, unit: UnitOfWork<T>) => Promise<R>) =>
    async (unit: UnitOfWork<T>) => {
      for (const item of unit.items) await unit.step(item, () => each(item, unit));
    };

  it('runs the items of a batch in one transaction', async () => {
    const results = await transactions.runBatch(
      [1, 2, 3],
      eachInStep(async (n: number, unit) => {
        await unit.manager.query(`INSERT INTO effects VALUES ($1)`, [n]);
        const [{ id }] = await unit.manager.query<Array<{ id: string }>>(`SELECT txid_current()::text AS id`);
        return id;
      }),
    );
    expect(new Set(results.map((result) => result.ok && result.value)).size).toBe(1);
    expect(await effects()).toEqual([1, 2, 3]);
  });

  it('commits the others once when an item fails, after-commit callbacks included, and the failing one not at all', async () => {
    const committed: number[] = [];
    const results = await transactions.runBatch(
      [1, 2, 3],
      eachInStep(async (n: number, unit) => {
        await unit.manager.query(`INSERT INTO effects VALUES ($1)`, [n]);
        unit.afterCommit(() => committed.push(n));
        if (n === 2) throw new Error('item 2 refused');
        return n * 10;
      }),
    );
    expect(results).toEqual([
      { ok: true, value: 10 },
      { ok: false, error: new Error('item 2 refused') },
      { ok: true, value: 30 },
    ]);
    expect(await effects()).toEqual([1, 3]);
    expect(committed).toEqual([1, 3]);
  });

  it('goes on after an item whose statement failed (which aborted the shared transaction)', async () => {
    const results = await transactions.runBatch(
      [1, 2],
      eachInStep(async (n: number, unit) => {
        if (n === 1) await unit.manager.query(`SELECT 1 / 0`);
        await unit.manager.query(`INSERT INTO effects VALUES ($1)`, [n]);
      }),
    );
    expect(results.map((r) => r.ok)).toEqual([false, true]);
    expect(await effects()).toEqual([2]);
  });

  it('runs each item alone when the batch cannot commit, so the others do not depend on the one that broke it', async () => {
    const committed: number[] = [];
    const results = await transactions.runBatch(
      [7, 7, 8],
      eachInStep(async (n: number, unit) => {
        await unit.manager.query(`INSERT INTO effects VALUES ($1)`, [n]);
        unit.afterCommit(() => committed.push(n));
      }),
    );
    expect(results.map((r) => r.ok)).toEqual([true, false, true]);
    expect(await effects()).toEqual([7, 8]);
    expect(committed).toEqual([7, 8]);
  });

  it('sets a failing item aside and runs the rest together once: 3 transactions for a poison item among 50, not 52', async () => {
    const items = Array.from({ length: 50 }, (_, i) => i + 1);
    const runs: number[][] = [];
    const results = await transactions.runBatch(items, async (unit) => {
      runs.push([...unit.items]);
      for (const n of unit.items) {
        await unit.step(n, async () => {
          if (n === 17) throw new Error('poison');
          await unit.manager.query(`INSERT INTO effects VALUES ($1)`, [n]);
        });
      }
    });
    expect(runs.map((run) => run.length)).toEqual([50, 49, 1]);
    expect(results.filter((r) => !r.ok)).toEqual([{ ok: false, error: new Error('poison') }]);
    expect(results[16]).toEqual({ ok: false, error: new Error('poison') });
    expect(await effects()).toEqual(items.filter((n) => n !== 17));
  });

  it('sends the outbox rows of a committed unit (and hands them to the fast path), none of a rolled-back one', async () => {
    await transactions.run(async (unit) => unit.send([message(1), message(2)]));
    await expect(
      transactions.run(async (unit) => {
        unit.send([message(3)]);
        throw new Error('rolled back');
      }),
    ).rejects.toThrow('rolled back');
    expect(await outboxIds()).toEqual([message(1).messageId, message(2).messageId]);
    expect(published).toEqual([[message(1).messageId, message(2).messageId]]);
  });

  it('takes back what a savepoint sent when its work is not kept or throws, and keeps the rest', async () => {
    await transactions.run(async (unit) => {
      unit.send([message(1)]);
      await unit.savepoint(
        async () => {
          unit.send([message(2)]);
          await unit.manager.query(`INSERT INTO effects VALUES (2)`);
          return 'no' as const;
        },
        (vote) => vote !== 'no',
      );
      await expect(
        unit.savepoint(async () => {
          unit.send([message(3)]);
          await unit.manager.query(`INSERT INTO effects VALUES (3)`);
          throw new Error('refused');
        }),
      ).rejects.toThrow('refused');
      await unit.savepoint(async () => {
        unit.send([message(4)]);
        await unit.manager.query(`INSERT INTO effects VALUES (4)`);
      });
    });
    expect(await outboxIds()).toEqual([message(1).messageId, message(4).messageId]);
    expect(published).toEqual([[message(1).messageId, message(4).messageId]]);
    expect(await effects()).toEqual([4]);
  });

  it('learns that a COMMIT whose reply was lost landed, and does not run the work again', async () => {
    let runs = 0;
    const results = await transactions.runBatch(
      [1, 2],
      eachInStep(async (n: number, unit) => {
        runs += 1;
        await unit.manager.query(`INSERT INTO effects VALUES ($1)`, [n]);
        unit.send([message(n)]);
        if (n === 2) loseCommitReply(unit);
      }),
    );
    expect(results).toEqual([
      { ok: true, value: undefined },
      { ok: true, value: undefined },
    ]);
    expect(runs).toBe(2);
    expect(await effects()).toEqual([1, 2]);
    expect(await outboxIds()).toHaveLength(2);
  });

  it('answers an unknown outcome (never a re-run) when it cannot learn whether the COMMIT landed', async () => {
    let runs = 0;
    const results = await transactions.runBatch(
      [1, 2],
      eachInStep(async (n: number, unit) => {
        runs += 1;
        await unit.manager.query(`INSERT INTO effects VALUES ($1)`, [n]);
        if (n === 2) loseCommitReply(unit, { andTheStatus: true });
      }),
    );
    expect(runs).toBe(2);
    expect(results.every((result) => !result.ok && result.error instanceof CommitOutcomeUnknownError)).toBe(true);
    expect(await effects()).toEqual([1, 2]); // it did land
  });

  it('gives a unit that writes nothing no transaction id, so a read-only sweep costs no commit record', async () => {
    const assigned: Array<string | null> = [];
    /** Just before the COMMIT: the id the transaction has by then, if any. */
    const noteAssignedId = (unit: UnitOfWork) => {
      const queryRunner = unit.manager.queryRunner!;
      const commit = queryRunner.commitTransaction.bind(queryRunner);
      queryRunner.commitTransaction = async () => {
        const [{ id }] = (await queryRunner.query(`SELECT pg_current_xact_id_if_assigned()::text AS id`)) as Array<{
          id: string | null;
        }>;
        assigned.push(id);
        return commit();
      };
    };
    await transactions.run(async (unit) => {
      noteAssignedId(unit);
      await unit.manager.query(`SELECT count(*) FROM effects`);
    });
    await transactions.run(async (unit) => {
      noteAssignedId(unit);
      await unit.manager.query(`INSERT INTO effects VALUES (7)`);
    });
    expect(assigned[0]).toBeNull();
    expect(assigned[1]).toMatch(/^\d+$/);
    expect(await effects()).toEqual([7]);
  });

  /**
   * The connection dies right after its COMMIT reached the server: the server commits, the client
   * sees an error. (Its query runner's COMMIT is let through, then the socket is destroyed.)
   */
  function loseCommitReply(unit: UnitOfWork<number>, options: { andTheStatus?: boolean } = {}) {
    const queryRunner = unit.manager.queryRunner!;
    const commit = queryRunner.commitTransaction.bind(queryRunner);
    queryRunner.commitTransaction = async () => {
      const client = (queryRunner as unknown as { databaseConnection: { query(sql: string): Promise<unknown> } })
        .databaseConnection;
      await client.query('COMMIT');
      // As a dying connection does: the socket errors (the pool then drops the client).
      const { stream } = (client as unknown as { connection: { stream: { destroy(error: Error): void } } }).connection;
      stream.destroy(new Error('connection reset'));
      if (options.andTheStatus) {
        const query = schema.dataSource.query.bind(schema.dataSource);
        schema.dataSource.query = (async (sql: string, ...rest: unknown[]) => {
          if (sql.includes('pg_xact_status')) {
            schema.dataSource.query = query;
            throw new Error('Connection terminated unexpectedly');
          }
          return query(sql, ...(rest as []));
        }) as typeof schema.dataSource.query;
      }
      void commit; // the real commit already went out above
      throw new Error('Connection terminated unexpectedly');
    };
  }
});

import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { eventually } from '../../../test/support/eventually';
import { PgProxy } from '../../../test/support/pg-proxy';
import { adminQuery, createTestSchema, TestSchema } from '../../../test/support/postgres';
import { BaseConfig } from './config';
import { Transactions } from '@shop/outbox';
import { serviceDataSourceOptions } from './data-source';
import { RetryLaterException } from './problem-details.filter';
import { RequestDatabase } from './request-database';

/**
 * Requests may hold only their share of the pool: with every request connection stuck, a message
 * handler still gets a connection at once (real Postgres, real lock waits).
 */
describe('RequestDatabase', () => {
  const APP = 'request-share-test';
  let schema: TestSchema;
  let dataSource: DataSource;
  let locker: Client;

  beforeAll(async () => {
    schema = await createTestSchema('requestdb');
    dataSource = await new DataSource(
      serviceDataSourceOptions({ url: schema.url, migrations: [], applicationName: APP, poolSize: 6 }),
    ).initialize();
    locker = new Client({ connectionString: schema.url });
    await locker.connect();
  });
  afterAll(async () => {
    await locker?.end();
    await dataSource?.destroy();
    await schema?.drop();
  });

  const env = {
    PORT: '3000',
    get DATABASE_URL() {
      return schema.url;
    },
    AMQP_URL: 'amqp://unused',
    DB_POOL_SIZE: '6',
    AMQP_PREFETCH: '1',
  };

  const waitingOnTheLock = async () =>
    (
      await adminQuery<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`,
        [APP],
      )
    )[0].n;

  it('lets requests hold at most DB_REQUEST_CONNECTIONS connections; handlers keep the rest', async () => {
    const config = BaseConfig.parse({ ...env, DB_REQUEST_CONNECTIONS: '2' });
    const requests = new RequestDatabase(dataSource, new Transactions(dataSource), config);
    await locker.query(`SELECT pg_advisory_lock(4242)`);

    // Five requests that each block on the lock inside a transaction.
    const blocked = Array.from({ length: 5 }, () =>
      requests.transaction(({ manager }) => manager.query(`SELECT pg_advisory_xact_lock_shared(4242)`)),
    );
    await eventually(async () => (await waitingOnTheLock()) === 2, { what: 'two requests waiting on the lock' });

    // A handler is not queued behind them: it gets one of the pool's other connections.
    expect(await dataSource.query(`SELECT 1 AS one`)).toEqual([{ one: 1 }]);
    expect(await waitingOnTheLock()).toBe(2);

    await locker.query(`SELECT pg_advisory_unlock(4242)`);
    await Promise.all(blocked);
    expect(await waitingOnTheLock()).toBe(0);
  });

  it('lets concurrent requests share a transaction (one commit), and a failing one fails alone', async () => {
    const requests = new RequestDatabase(
      dataSource,
      new Transactions(dataSource),
      BaseConfig.parse({ ...env, DB_REQUEST_CONNECTIONS: '2' }),
    );
    await dataSource.query(`CREATE TABLE placed (n int PRIMARY KEY)`);
    await locker.query(`SELECT pg_advisory_lock(4243)`);
    const place = (n: number) =>
      requests.sharedTransaction(async ({ manager }) => {
        await manager.query(`INSERT INTO placed VALUES ($1)`, [n]);
        if (n === 1) await manager.query(`SELECT pg_advisory_xact_lock_shared(4243)`); // the first one is slow
        if (n === 4) throw new Error('refused');
        const [{ xid }] = await manager.query<Array<{ xid: string }>>(`SELECT txid_current()::text AS xid`);
        return xid;
      });
    const first = place(1);
    await eventually(async () => (await waitingOnTheLock()) === 1, { what: 'the first request holding its commit' });
    const later = [2, 3, 4, 5].map((n) =>
      place(n).then(
        (xid) => ({ xid }),
        (error: Error) => ({ error: error.message }),
      ),
    );
    await locker.query(`SELECT pg_advisory_unlock(4243)`);
    await first;
    const [two, three, four, five] = await Promise.all(later);
    expect(four).toEqual({ error: 'refused' });
    expect([two, three, five].every((answer) => 'xid' in answer)).toBe(true); // each again on its own
    const rows = await dataSource.query<Array<{ n: number }>>(`SELECT n FROM placed ORDER BY n`);
    expect(rows.map((row) => row.n)).toEqual([1, 2, 3, 5]);
  });

  it('commits requests that come while two others are being written in one transaction', async () => {
    const requests = new RequestDatabase(
      dataSource,
      new Transactions(dataSource),
      BaseConfig.parse({ ...env, DB_REQUEST_CONNECTIONS: '3' }),
    );
    await locker.query(`SELECT pg_advisory_lock(4244)`);
    const xid = (slow: boolean) =>
      requests.sharedTransaction(async ({ manager }) => {
        if (slow) await manager.query(`SELECT pg_advisory_xact_lock_shared(4244)`);
        const [row] = await manager.query<Array<{ xid: string }>>(`SELECT txid_current()::text AS xid`);
        return row.xid;
      });
    const slow = [xid(true), xid(true)];
    await eventually(async () => (await waitingOnTheLock()) === 2, { what: 'two shared transactions held' });
    const later = Promise.all([xid(false), xid(false), xid(false)]);
    await locker.query(`SELECT pg_advisory_unlock(4244)`);
    const [slowXids, laterXids] = [await Promise.all(slow), await later];
    expect(new Set(slowXids).size).toBe(2);
    expect(new Set(laterXids).size).toBe(1);
    expect(slowXids).not.toContain(laterXids[0]);
  });

  it('writes the next shared transaction while one waits (a slow group holds up nobody behind it)', async () => {
    const requests = new RequestDatabase(
      dataSource,
      new Transactions(dataSource),
      BaseConfig.parse({ ...env, DB_REQUEST_CONNECTIONS: '3' }),
    );
    await dataSource.query(`CREATE TABLE written (n int PRIMARY KEY)`);
    await locker.query(`SELECT pg_advisory_lock(4245)`);
    const write = (n: number, slow: boolean) =>
      requests.sharedTransaction(async ({ manager }) => {
        if (slow) await manager.query(`SELECT pg_advisory_xact_lock_shared(4245)`);
        await manager.query(`INSERT INTO written VALUES ($1)`, [n]);
      });
    const held = write(1, true);
    await eventually(async () => (await waitingOnTheLock()) === 1, { what: 'the first shared transaction held' });
    await write(2, false); // committed while the first still waits
    expect(await dataSource.query(`SELECT n FROM written`)).toEqual([{ n: 2 }]);
    expect(await waitingOnTheLock()).toBe(1);
    await locker.query(`SELECT pg_advisory_unlock(4245)`);
    await held;
    expect((await dataSource.query<Array<{ n: number }>>(`SELECT n FROM written ORDER BY n`)).map((r) => r.n)).toEqual([
      1, 2,
    ]);
  });
});

/**
 * A shared transaction whose COMMIT reached the server but whose reply was lost (the connection
 * died on the way back): it committed, so running its requests again would write each twice. A
 * proxy between the pool and Postgres makes it happen (real Postgres, a real dead connection).
 */
describe('RequestDatabase, when the COMMIT of a shared transaction loses its reply', () => {
  const APP = 'request-commit-cut-test';
  let schema: TestSchema;
  let proxy: PgProxy;
  let dataSource: DataSource;
  let locker: Client;
  let requests: RequestDatabase;

  beforeAll(async () => {
    schema = await createTestSchema('requestcut');
    proxy = await PgProxy.start(schema.url);
    dataSource = await new DataSource(
      serviceDataSourceOptions({ url: proxy.url, migrations: [], applicationName: APP, poolSize: 6 }),
    ).initialize();
    await dataSource.query(
      `CREATE TABLE placed (request int NOT NULL, attempt uuid PRIMARY KEY DEFAULT gen_random_uuid())`,
    );
    locker = new Client({ connectionString: schema.url });
    await locker.connect();
    const config = BaseConfig.parse({
      PORT: '3000',
      DATABASE_URL: proxy.url,
      AMQP_URL: 'amqp://unused',
      DB_POOL_SIZE: '6',
      DB_REQUEST_CONNECTIONS: '3',
    });
    requests = new RequestDatabase(dataSource, new Transactions(dataSource), config);
  });
  afterAll(async () => {
    await locker?.end();
    await dataSource?.destroy();
    await proxy?.close();
    await schema?.drop();
  });
  beforeEach(() => dataSource.query(`TRUNCATE placed`));

  /**
   * Requests 0 and 5 run alone, each in a shared transaction of its own (two are written at once),
   * and are held (on a lock) while requests 1 to 4 gather for the next shared transaction, whose
   * COMMIT then loses its reply. Answers what requests 0 to 4 were told (5 is answered 5).
   */
  async function shareALostCommit(lock: number): Promise<Array<{ value?: unknown; error?: unknown }>> {
    await locker.query(`SELECT pg_advisory_lock($1)`, [lock]);
    const place = (request: number) =>
      requests
        .sharedTransaction(async ({ manager }) => {
          await manager.query(`INSERT INTO placed (request) VALUES ($1)`, [request]);
          if (request === 0 || request === 5) await manager.query(`SELECT pg_advisory_xact_lock_shared($1)`, [lock]);
          return request;
        })
        .then(
          (value) => ({ value }),
          (error: unknown) => ({ error }),
        );
    const first = place(0);
    const other = place(5);
    await eventually(
      async () =>
        (
          await adminQuery<{ n: number }>(
            `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`,
            [APP],
          )
        )[0].n === 2,
      { what: 'requests 0 and 5 holding the shared transactions in flight' },
    );
    let cut = false;
    void proxy
      .cutCommit((statements) => statements.filter((sql) => sql.startsWith('INSERT INTO placed')).length === 4)
      .then(() => (cut = true));
    const group = [1, 2, 3, 4].map(place);
    await locker.query(`SELECT pg_advisory_unlock($1)`, [lock]);
    const answers = await Promise.all([first, ...group]);
    expect(await other).toEqual({ value: 5 });
    expect(cut).toBe(true);
    return answers;
  }

  const writesPerRequest = async () =>
    (
      await dataSource.query<Array<{ request: number; n: number }>>(
        `SELECT request, count(*)::int AS n FROM placed GROUP BY request ORDER BY request`,
      )
    ).map(({ request, n }) => [request, n]);

  it('learns that it committed and answers each request once: nothing is run again', async () => {
    const answers = await shareALostCommit(4251);
    expect(answers).toEqual([0, 1, 2, 3, 4].map((value) => ({ value })));
    expect(await writesPerRequest()).toEqual([0, 1, 2, 3, 4, 5].map((request) => [request, 1]));
  });

  it('answers 503 (retry with the same Idempotency-Key) when it cannot learn the outcome, and runs nothing again', async () => {
    const statusQueries = proxy.refuse((sql) => sql.includes('pg_xact_status'));
    const answers = await shareALostCommit(4252).finally(() => statusQueries.stop());
    // It did commit (the server got the COMMIT): each request's row once.
    expect(await writesPerRequest()).toEqual([0, 1, 2, 3, 4, 5].map((request) => [request, 1]));
    expect(statusQueries.refused).toBeGreaterThan(0);
    expect(answers[0]).toEqual({ value: 0 });
    for (const { error } of answers.slice(1)) {
      expect(error).toBeInstanceOf(RetryLaterException);
      expect((error as RetryLaterException).getStatus()).toBe(503);
      expect((error as RetryLaterException).retryAfterSeconds).toBeGreaterThanOrEqual(1);
      expect((error as Error).message).toMatch(/unknown; retry with the same Idempotency-Key/);
    }
  });
});

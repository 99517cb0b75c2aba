import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { eventually } from '../../../test/support/eventually';
import { adminQuery, createTestSchema, TestSchema } from '../../../test/support/postgres';
import { BaseConfig } from './config';
import { serviceDataSourceOptions } from './data-source';
import { sessionLimits } from './session-limits';
import { isTransientDatabaseError } from './transient-errors';

/**
 * A stuck session cannot hold locks for ever: the pool's sessions carry the configured bounds, and
 * real Postgres ends what passes them with errors the consumer retries (not dead-letters).
 */
describe('database session limits', () => {
  const APP = 'session-limits-test';
  const LOCK = 4343;
  let schema: TestSchema;
  let dataSource: DataSource;
  let other: Client;

  beforeAll(async () => {
    schema = await createTestSchema('sessionlimits');
    const config = BaseConfig.parse({
      PORT: '3000',
      DATABASE_URL: schema.url,
      AMQP_URL: 'amqp://unused',
      DB_STATEMENT_TIMEOUT_MS: '1500',
      DB_IDLE_IN_TRANSACTION_TIMEOUT_MS: '1000',
      DB_LOCK_TIMEOUT_MS: '500',
    });
    dataSource = await new DataSource(
      serviceDataSourceOptions({
        url: schema.url,
        migrations: [],
        applicationName: APP,
        poolSize: 4,
        sessionLimits: sessionLimits(config),
      }),
    ).initialize();
    other = new Client({ connectionString: schema.url });
    await other.connect();
  });
  afterAll(async () => {
    await other?.end();
    await dataSource?.destroy();
    await schema?.drop();
  });

  it('every pooled session runs with the configured timeouts and TCP keepalives', async () => {
    expect(
      await dataSource.query(
        `SELECT current_setting('statement_timeout') AS statement,
                current_setting('idle_in_transaction_session_timeout') AS idle,
                current_setting('lock_timeout') AS lock`,
      ),
    ).toEqual([{ statement: '1500ms', idle: '1s', lock: '500ms' }]);
    const options = serviceDataSourceOptions({ url: schema.url, migrations: [], applicationName: APP });
    expect(options.extra).toMatchObject({ keepAlive: true, keepAliveInitialDelayMillis: 10_000 });
  });

  it('ends a session left idle in a transaction past the bound, freeing its locks', async () => {
    const stuck = dataSource.createQueryRunner();
    await stuck.connect();
    const [{ pid }] = (await stuck.query(`SELECT pg_backend_pid() AS pid`)) as Array<{ pid: number }>;
    await stuck.startTransaction();
    await stuck.query(`SELECT pg_advisory_xact_lock($1)`, [LOCK]);
    // Its process goes quiet (paused, wedged) with the transaction open: the lock is held...
    const [{ taken }] = (await other.query(`SELECT pg_try_advisory_lock($1) AS taken`, [LOCK])).rows;
    expect(taken).toBe(false);
    // ...until Postgres ends the session, and someone else gets it.
    await eventually(
      async () => (await other.query(`SELECT pg_try_advisory_lock($1) AS taken`, [LOCK])).rows[0].taken === true,
      { what: 'the idle transaction’s lock freed', timeoutMs: 10_000 },
    );
    await other.query(`SELECT pg_advisory_unlock($1)`, [LOCK]);
    expect(await adminQuery(`SELECT pid FROM pg_stat_activity WHERE pid = $1`, [pid])).toEqual([]);
    // When the process wakes up, its next statement fails as a transient error: the batch is retried.
    const failure = await stuck.query(`SELECT 1`).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(failure).toBeDefined();
    expect(isTransientDatabaseError(failure)).toBe(true);
    await stuck.release().catch(() => undefined);
  });

  it('fails a lock wait past lock_timeout and a statement past statement_timeout, both as transient', async () => {
    await other.query(`SELECT pg_advisory_lock($1)`, [LOCK]);
    try {
      const lockWait = await dataSource.query(`SELECT pg_advisory_xact_lock($1)`, [LOCK]).catch((err: unknown) => err);
      expect(lockWait).toMatchObject({ driverError: { code: '55P03' } });
      expect(isTransientDatabaseError(lockWait)).toBe(true);
    } finally {
      await other.query(`SELECT pg_advisory_unlock($1)`, [LOCK]);
    }
    const slow = await dataSource.query(`SELECT pg_sleep(5)`).catch((err: unknown) => err);
    expect(slow).toMatchObject({ driverError: { code: '57014' } });
    expect(isTransientDatabaseError(slow)).toBe(true);
  });
});

import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { eventually } from '../../../test/support/eventually';
import { adminQuery, createTestSchema, TestSchema } from '../../../test/support/postgres';
import { BaseConfig } from './config';
import { serviceDataSourceOptions } from './data-source';
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

  const waitingOnTheLock = async () =>
    (
      await adminQuery<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`,
        [APP],
      )
    )[0].n;

  it('lets requests hold at most DB_REQUEST_CONNECTIONS connections; handlers keep the rest', async () => {
    const config = BaseConfig.parse({
      PORT: '3000',
      DATABASE_URL: schema.url,
      AMQP_URL: 'amqp://unused',
      DB_POOL_SIZE: '6',
      DB_REQUEST_CONNECTIONS: '2',
      AMQP_PREFETCH: '1',
    });
    const requests = new RequestDatabase(dataSource, config);
    await locker.query(`SELECT pg_advisory_lock(4242)`);

    // Five requests that each block on the lock inside a transaction.
    const blocked = Array.from({ length: 5 }, () =>
      requests.transaction((manager) => manager.query(`SELECT pg_advisory_xact_lock_shared(4242)`)),
    );
    await eventually(async () => (await waitingOnTheLock()) === 2, { what: 'two requests waiting on the lock' });

    // A handler is not queued behind them: it gets one of the pool's other connections.
    expect(await dataSource.query(`SELECT 1 AS one`)).toEqual([{ one: 1 }]);
    expect(await waitingOnTheLock()).toBe(2);

    await locker.query(`SELECT pg_advisory_unlock(4242)`);
    await Promise.all(blocked);
    expect(await waitingOnTheLock()).toBe(0);
  });
});

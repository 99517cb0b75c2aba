import { Pool, PoolClient } from 'pg';
import { testEnv } from './env';

/**
 * One small superuser pool per test file (Jest gives each file its own module registry), for
 * reading and checking the three services' schemas. Close it in afterAll with `closeDb()`.
 */
let pool: Pool | undefined;

export function db(): Pool {
  if (!pool) {
    pool = new Pool({ connectionString: testEnv.pgAdminUrl, max: 4, application_name: 'e2e-tests' });
    // Fault tests restart Postgres: an idle client's lost connection must not crash the run.
    pool.on('error', () => undefined);
  }
  return pool;
}

export async function sql<T = Record<string, unknown>>(text: string, params: unknown[] = []): Promise<T[]> {
  return (await db().query(text, params)).rows as T[];
}

/** Runs `fn` in one REPEATABLE READ, READ ONLY transaction: every query sees the same snapshot. */
export async function snapshot<T>(fn: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await db().connect();
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

export async function closeDb(): Promise<void> {
  const current = pool;
  pool = undefined;
  await current?.end();
}

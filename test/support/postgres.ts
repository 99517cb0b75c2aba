import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { serviceDataSourceOptions, runMigrations } from '@shop/service-kit';
import { testEnv } from './env';

export interface TestSchema {
  name: string;
  /** Connection URL whose search_path is the schema, like a service role's. */
  url: string;
  dataSource: DataSource;
  drop(): Promise<void>;
}

/** Connection URL with a search_path, as a service's role has it. */
export function withSearchPath(url: string, schema: string): string {
  const parsed = new URL(url);
  parsed.searchParams.set('options', `-c search_path=${schema}`);
  return parsed.toString();
}

export async function adminQuery<T = unknown>(sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new Client({ connectionString: testEnv.pgAdminUrl });
  await client.connect();
  try {
    return (await client.query(sql, params)).rows as T[];
  } finally {
    await client.end();
  }
}

/**
 * A fresh schema with the outbox and inbox tables (the shared migrations) and any others given, isolated from every
 * other test; dropped by `drop()`.
 */
export async function createTestSchema(prefix: string, migrations: Array<new () => unknown> = []): Promise<TestSchema> {
  const name = `${prefix}_${randomBytes(4).toString('hex')}`;
  await adminQuery(`CREATE SCHEMA ${name}`);
  const url = withSearchPath(testEnv.pgAdminUrl, name);
  const options = serviceDataSourceOptions({ url, migrations, applicationName: name, poolSize: 10 });
  await runMigrations(options, () => undefined);
  const dataSource = await new DataSource(options).initialize();
  return {
    name,
    url,
    dataSource,
    async drop() {
      await dataSource.destroy();
      await adminQuery(`DROP SCHEMA ${name} CASCADE`);
    },
  };
}

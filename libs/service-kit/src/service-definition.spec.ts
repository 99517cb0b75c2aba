import { Column, Entity, PrimaryColumn, type MigrationInterface } from 'typeorm';
import { z } from 'zod';
import { CreateInbox1764000000001 } from '@shop/inbox';
import { CreateOutbox1764000000000, OutboxFastPath1764000000002 } from '@shop/outbox';
import { BaseConfig, ConfigError } from './config';
import { defineService } from './service-definition';

@Entity({ name: 'things' })
class Thing {
  @PrimaryColumn('text') id!: string;
  @Column('bigint') count!: string;
}

class CreateThings1764999999999 implements MigrationInterface {
  name = 'CreateThings1764999999999';
  async up(): Promise<void> {}
  async down(): Promise<void> {}
}

const ThingsConfig = BaseConfig.extend({ THINGS_PER_PAGE: z.coerce.number().int().default(10) });
const env = {
  NODE_ENV: 'development',
  PORT: '3000',
  DATABASE_URL: 'postgres://things_svc:p@db/shop',
  MIGRATION_DATABASE_URL: 'postgres://things_svc_migrator:p@db/shop',
  AMQP_URL: 'amqp://u:p@h/v',
  DB_POOL_SIZE: '12',
  DB_LOCK_TIMEOUT_MS: '1234',
  DB_PREPARED_STATEMENTS: 'false',
};
const things = (overrides: Record<string, string> = {}) =>
  defineService(
    { name: 'inventory', config: ThingsConfig, migrations: [CreateThings1764999999999], entities: [Thing] },
    { ...env, ...overrides },
  );

describe('defineService', () => {
  it("validates the service's own settings with the kit's", () => {
    expect(things().config).toMatchObject({ THINGS_PER_PAGE: 10, DB_POOL_SIZE: 12, PORT: 3000 });
    expect(() => things({ THINGS_PER_PAGE: 'many' })).toThrow(ConfigError);
    expect(() => things({ THINGS_PER_PAGE: 'many' })).toThrow(/THINGS_PER_PAGE/);
  });

  it('connects as the runtime role, with its pool, session limits, entities and the kit migrations first', () => {
    const options = things().dataSource;
    expect(options).toMatchObject({
      type: 'postgres',
      url: env.DATABASE_URL,
      applicationName: 'inventory',
      poolSize: 12,
      entities: [Thing],
      migrations: [
        CreateOutbox1764000000000,
        CreateInbox1764000000001,
        OutboxFastPath1764000000002,
        CreateThings1764999999999,
      ],
      synchronize: false,
      extra: { lock_timeout: 1234, preparedStatements: false },
    });
  });

  it('migrates (and serves the TypeORM CLI) as the role that owns the schema, or as the runtime role without one', () => {
    expect(things().migrationDataSource).toMatchObject({ url: env.MIGRATION_DATABASE_URL, entities: [Thing] });
    expect(things().cliDataSource().options).toMatchObject({ url: env.MIGRATION_DATABASE_URL });
    expect(things({ MIGRATION_DATABASE_URL: '' }).migrationDataSource).toMatchObject({ url: env.DATABASE_URL });
  });
});

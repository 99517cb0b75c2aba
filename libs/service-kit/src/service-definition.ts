import type { INestApplication, Type } from '@nestjs/common';
import { DataSource, type DataSourceOptions } from 'typeorm';
import type { z } from 'zod';
import type { ServiceName } from '@shop/contracts';
import { bootstrapService } from './bootstrap';
import { type BaseConfig, loadConfig } from './config';
import { migrationDatabaseUrl } from './database.config';
import { type Classes, runMigrations, serviceDataSourceOptions } from './data-source';
import { sessionLimits } from './session-limits';

export interface ServiceOptions<S extends z.ZodType<BaseConfig>> {
  /** Shown in logs, traces, metrics, the database's application_name and the OpenAPI title. */
  name: ServiceName;
  /** The schema of its settings (`BaseConfig` extended), validated against the environment here. */
  config: S;
  /** Its migrations, in order; the kit's outbox and inbox tables come before them. */
  migrations: Classes;
  /**
   * Its TypeORM entities: what `unit.manager.getRepository(Entity)` works with. Their tables still
   * come from the migrations (never `synchronize`).
   */
  entities?: Classes;
  /** The OpenAPI document's description. */
  description?: string;
}

/**
 * One service as the kit runs it, from one `defineService` call: its validated settings, its
 * database (TypeORM options as its runtime role, and as the role that owns its schema), and its
 * three entry points: `main` (main.ts), `migrate` (migrate.ts) and `cliDataSource` (data-source.ts,
 * for the TypeORM CLI). `ServiceKitModule.forRoot` takes it as it is.
 */
export class ServiceDefinition<C extends BaseConfig> {
  readonly name: ServiceName;
  readonly config: C;
  /** TypeORM options as the service's runtime role (DATABASE_URL), which may only read and write rows. */
  readonly dataSource: DataSourceOptions;

  constructor(
    private readonly options: Omit<ServiceOptions<z.ZodType<BaseConfig>>, 'config'>,
    /** Its validated settings. */
    config: C,
  ) {
    this.name = options.name;
    this.config = config;
    this.dataSource = this.dataSourceOptions(config.DATABASE_URL);
  }

  /** TypeORM options as the role that owns the schema (MIGRATION_DATABASE_URL, or DATABASE_URL's if unset). */
  get migrationDataSource(): DataSourceOptions {
    return this.dataSourceOptions(migrationDatabaseUrl(this.config));
  }

  /** main.ts: starts the app of `module` (see `bootstrapService`); a failed start is printed and exits 1. */
  main(module: Type<unknown>): Promise<INestApplication> {
    return bootstrapService(module, {
      service: this.name,
      config: this.config,
      description: this.options.description,
    }).catch(exitWith1);
  }

  /** migrate.ts: runs the pending migrations as the schema's owner and exits (0, or 1 with the error printed). */
  migrate(): Promise<void> {
    return runMigrations(this.migrationDataSource).then(() => process.exit(0), exitWith1);
  }

  /** data-source.ts: what the TypeORM CLI loads (migration:generate|run|revert), as the schema's owner. */
  cliDataSource(): DataSource {
    return new DataSource(this.migrationDataSource);
  }

  private dataSourceOptions(url: string): DataSourceOptions {
    return serviceDataSourceOptions({
      url,
      poolSize: this.config.DB_POOL_SIZE,
      preparedStatements: this.config.DB_PREPARED_STATEMENTS,
      sessionLimits: sessionLimits(this.config),
      applicationName: this.name,
      migrations: this.options.migrations,
      entities: this.options.entities,
    });
  }
}

/**
 * Defines a service from its name, settings schema, migrations and entities; its settings are
 * validated now (a wrong or missing one throws `ConfigError`, naming it).
 */
export function defineService<S extends z.ZodType<BaseConfig>>(
  options: ServiceOptions<S>,
  env: NodeJS.ProcessEnv = process.env,
): ServiceDefinition<z.infer<S>> {
  const { config, ...rest } = options;
  return new ServiceDefinition(rest, loadConfig(config, env));
}

function exitWith1(err: unknown): never {
  console.error(err);
  process.exit(1);
}

import { Logger } from '@nestjs/common';
import { Pool } from 'pg';
import type { Gauge } from 'prom-client';
import { PeriodicTask } from '@shop/messaging';

/** What a database gauge reads through: `query(sql)` answers the rows. */
export interface Queryable {
  query<T = unknown>(sql: string, parameters?: unknown[]): Promise<T>;
}

/** How often the readiness ping and the database gauges are read. */
export const MANAGEMENT_REFRESH_MS = 2_000;
/** A ping older than this no longer counts: the database is reported down. */
const STALE_AFTER_MS = 3 * MANAGEMENT_REFRESH_MS;
/** Each read's budget (connect, then run). */
const QUERY_TIMEOUT_MS = 1_000;

/** Gauges set from one read, in order: one query per refresh however many numbers it answers. */
interface DatabaseGauges {
  gauges: readonly Gauge[];
  read: (database: Queryable) => Promise<readonly number[]>;
}

/** The database as the readiness probe last saw it. */
export type DatabaseState = { up: true } | { up: false; reason: string };

/**
 * The management port's database: one connection of its own, apart from the service's pool,
 * through which the readiness ping and the database gauges are read every MANAGEMENT_REFRESH_MS,
 * one read at a time. Probes and scrapes answer what was last read, so no number of them takes a
 * connection that votes, acks or requests need, nor runs a query.
 */
export class ManagementDatabase {
  private readonly pool: Pool;
  private readonly connection: Queryable;
  private readonly gauges: DatabaseGauges[] = [];
  private readonly task: PeriodicTask;
  private lastPingAt: number | undefined;
  private lastError = 'not checked yet';

  constructor(url: string, applicationName: string, intervalMs = MANAGEMENT_REFRESH_MS) {
    this.pool = new Pool({
      connectionString: url,
      max: 1,
      application_name: applicationName,
      connectionTimeoutMillis: QUERY_TIMEOUT_MS,
      statement_timeout: QUERY_TIMEOUT_MS,
    });
    // An idle connection that dies (server restart) must not crash the process; the next read reconnects.
    this.pool.on('error', () => undefined);
    this.connection = {
      query: async <T>(sql: string, parameters?: unknown[]) => (await this.pool.query(sql, parameters)).rows as T,
    };
    this.task = new PeriodicTask(
      'management reads',
      intervalMs,
      () => this.refresh(),
      new Logger(ManagementDatabase.name),
    );
  }

  /**
   * `gauges` are set from one `read` on every refresh, the i-th from its i-th number (NaN when it
   * fails: unknown, never a reassuring 0).
   */
  refreshGauges(gauges: readonly Gauge[], read: (database: Queryable) => Promise<readonly number[]>): void {
    for (const gauge of gauges) gauge.set(Number.NaN);
    this.gauges.push({ gauges, read });
  }

  get state(): DatabaseState {
    const fresh = this.lastPingAt !== undefined && Date.now() - this.lastPingAt <= STALE_AFTER_MS;
    return fresh ? { up: true } : { up: false, reason: this.lastError };
  }

  /** Pings, then reads every gauge (what the timer runs; tests call it to not wait for one). */
  async refresh(): Promise<void> {
    try {
      await this.connection.query('SELECT 1');
      this.lastPingAt = Date.now();
    } catch (error) {
      this.lastPingAt = undefined;
      this.lastError = error instanceof Error ? error.message : String(error);
    }
    for (const { gauges, read } of this.gauges) {
      const values = await read(this.connection).catch(() => undefined);
      gauges.forEach((gauge, index) => gauge.set(values?.[index] ?? Number.NaN));
    }
  }

  start(): void {
    this.task.start();
    this.task.wake();
  }

  async stop(): Promise<void> {
    await this.task.stop();
    if (!this.pool.ended) await this.pool.end();
  }
}

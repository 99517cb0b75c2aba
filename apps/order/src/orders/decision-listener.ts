import { Inject, Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { SERVICE_CONFIG, type BaseConfig } from '@shop/service-kit';
import { ORDER_DECIDED_CHANNEL } from './order-decisions';

/**
 * Wakes requests waiting (`Prefer: wait`) for an order's decision. Decisions may be taken by any
 * replica, so they are announced through Postgres NOTIFY; one LISTEN connection per process,
 * opened on first use and reopened after a failure (waiters also re-check on a short timer).
 */
@Injectable()
export class DecisionListener implements OnModuleDestroy {
  private readonly logger = new Logger(DecisionListener.name);
  private readonly waiters = new Map<string, Set<() => void>>();
  private client: Promise<Client> | undefined;

  constructor(
    private readonly dataSource: DataSource,
    @Inject(SERVICE_CONFIG) private readonly config: BaseConfig,
  ) {}

  /** Resolves when the order is announced as decided, or after `maxMs`, whichever comes first. */
  async next(orderId: string, maxMs: number): Promise<void> {
    await this.listening().catch((err: unknown) => this.logger.warn(`LISTEN unavailable: ${String(err)}`));
    await new Promise<void>((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.waiters.get(orderId)?.delete(wake);
        if (this.waiters.get(orderId)?.size === 0) this.waiters.delete(orderId);
        resolve();
      };
      const timer = setTimeout(wake, maxMs);
      const set = this.waiters.get(orderId) ?? new Set();
      set.add(wake);
      this.waiters.set(orderId, set);
    });
  }

  async onModuleDestroy(): Promise<void> {
    for (const set of this.waiters.values()) for (const wake of set) wake();
    const client = await this.client?.catch(() => undefined);
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }

  private listening(): Promise<Client> {
    this.client ??= this.connect().catch((err: unknown) => {
      this.client = undefined;
      throw err;
    });
    return this.client;
  }

  private async connect(): Promise<Client> {
    const [{ schema }] = await this.dataSource.query<Array<{ schema: string }>>(`SELECT current_schema() AS schema`);
    const client = new Client({
      connectionString: this.config.DATABASE_URL,
      application_name: 'order-decision-listener',
    });
    client.on('notification', (notification) => {
      for (const wake of [...(this.waiters.get(notification.payload ?? '') ?? [])]) wake();
    });
    client.on('error', (err) => {
      this.logger.warn(`decision LISTEN connection lost: ${err.message}`);
      this.client = undefined;
      void client.end().catch(() => undefined);
    });
    await client.connect();
    await client.query(`LISTEN "${schema}.${ORDER_DECIDED_CHANNEL}"`);
    return client;
  }
}

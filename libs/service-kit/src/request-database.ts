import { Inject, Injectable } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';
import type { BaseConfig } from './config';
import { SERVICE_CONFIG } from './tokens';

/**
 * The database as HTTP requests see it: the service's one pool, of which requests may hold at
 * most DB_REQUEST_CONNECTIONS connections at once (the others wait here, in order). The rest of
 * the pool stays free for message handlers, so votes and acks always get a connection before a
 * new order does. Request code uses this; message handlers use the DataSource.
 */
@Injectable()
export class RequestDatabase {
  private free: number;
  private readonly waiting: Array<() => void> = [];

  constructor(
    private readonly dataSource: DataSource,
    @Inject(SERVICE_CONFIG) config: BaseConfig,
  ) {
    this.free = config.DB_REQUEST_CONNECTIONS;
  }

  query<T = unknown>(sql: string, parameters?: unknown[]): Promise<T> {
    return this.withConnection(() => this.dataSource.query<T>(sql, parameters));
  }

  transaction<T>(work: (manager: EntityManager) => Promise<T>): Promise<T> {
    return this.withConnection(() => this.dataSource.transaction(work));
  }

  private async withConnection<T>(work: () => Promise<T>): Promise<T> {
    if (this.free > 0) this.free -= 1;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await work();
    } finally {
      // Hand the connection's turn straight to the next waiter, or give it back.
      const next = this.waiting.shift();
      if (next) next();
      else this.free += 1;
    }
  }
}

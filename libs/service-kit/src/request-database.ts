import { Inject, Injectable } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';
import { Transactions, type UnitOfWork } from '@shop/outbox';
import type { BaseConfig } from './config';
import { asRequestError, GroupCommit } from './group-commit';
import { SERVICE_CONFIG } from './tokens';

type Work = (unit: UnitOfWork) => Promise<unknown>;

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
  /** `sharedTransaction`'s requests: each runs its own work in its step. */
  private readonly shared: GroupCommit<Work, unknown>;

  constructor(
    private readonly dataSource: DataSource,
    private readonly transactions: Transactions,
    @Inject(SERVICE_CONFIG) config: BaseConfig,
  ) {
    this.free = config.DB_REQUEST_CONNECTIONS;
    this.shared = this.groupCommit<Work, unknown>(async (unit) => {
      for (const work of unit.items) await unit.step(work, () => work(unit));
    });
  }

  query<T = unknown>(sql: string, parameters?: unknown[]): Promise<T> {
    return this.withConnection(() => this.dataSource.query<T>(sql, parameters));
  }

  /** Reads outside a transaction, e.g. through a repository: `read((manager) => manager.getRepository(E).findOneBy(...))`. */
  read<T>(work: (manager: EntityManager) => Promise<T>): Promise<T> {
    return this.withConnection(() => work(this.dataSource.manager));
  }

  /**
   * Runs `work` in a unit of work of its own (its repositories: `unit.manager.getRepository(E)`)
   * and commits it; what `work` threw is rethrown, rolled back. A COMMIT whose outcome cannot be
   * learnt is answered 503, like a shared transaction's.
   */
  transaction<T>(work: (unit: UnitOfWork) => Promise<T>): Promise<T> {
    return this.withConnection(() => this.transactions.run(work)).catch((error: unknown) => {
      throw asRequestError(error);
    });
  }

  /**
   * Like `transaction`, but concurrent requests share one (group commit; see `GroupCommit`):
   * each request's `work` runs in turn in the shared unit of work. A request that fails fails
   * alone, so `work` must not have effects outside the transaction (use the unit's `afterCommit`).
   * A COMMIT whose outcome cannot be learnt (the connection died on the way, and pg_xact_status
   * could not be asked) is never run again: each of its requests gets a 503 saying to retry with
   * the same Idempotency-Key.
   */
  sharedTransaction<T>(work: (unit: UnitOfWork) => Promise<T>): Promise<T> {
    return this.shared.run(work) as Promise<T>;
  }

  /**
   * A group commit for one kind of request whose `write` handles a whole group at once, set-based
   * (one statement for all its orders, say): see `GroupCommit`. Failures reach the request as
   * `sharedTransaction`'s do (a lost COMMIT as a 503).
   */
  groupCommit<I, R>(write: (unit: UnitOfWork<I>) => Promise<void>): GroupCommit<I, R> {
    return new GroupCommit<I, R>(this.transactions, (work) => this.withConnection(work), write);
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

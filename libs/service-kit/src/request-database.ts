import { Inject, Injectable } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';
import { CommitOutcomeUnknownError, Transactions, type BatchResult, type UnitOfWork } from '@shop/outbox';
import type { BaseConfig } from './config';
import { RetryLaterException } from './problem-details.filter';
import { SERVICE_CONFIG } from './tokens';

/** At most this many requests share one transaction (`sharedTransaction`). */
const MAX_SHARED = 100;
/**
 * Shared transactions in flight at once: while one waits for its commit (the WAL flush) or a
 * lock, the next is written, so one slow group does not hold up every request behind it. Two
 * groups never deadlock each other for good: a group's failing item is set aside and run alone.
 */
const SHARED_AT_ONCE = 2;

interface SharedWork {
  work: (unit: UnitOfWork) => Promise<unknown>;
  settle: (result: BatchResult<unknown>) => void;
}

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
  /** Requests waiting for the shared transaction in flight to commit; they share the next one. */
  private readonly gathering: SharedWork[] = [];
  /** Shared transactions being written or committed (at most SHARED_AT_ONCE). */
  private sharing = 0;

  constructor(
    private readonly dataSource: DataSource,
    private readonly transactions: Transactions,
    @Inject(SERVICE_CONFIG) config: BaseConfig,
  ) {
    this.free = config.DB_REQUEST_CONNECTIONS;
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
   * Like `transaction`, but concurrent requests share one (group commit): those that come while
   * SHARED_AT_ONCE are being written join the next, so a burst costs a commit and a WAL flush
   * per group, not one each. Alone, a request runs at once. A request that fails fails alone: the shared
   * transaction is rolled back and it is set aside, the others run again together (see
   * `Transactions.runBatch`), so `work` must not have effects outside the transaction (use the
   * unit's `afterCommit`). A COMMIT whose outcome cannot be learnt (the connection died on the
   * way, and pg_xact_status could not be asked) is never run again: each of its requests gets a
   * 503 saying to retry with the same Idempotency-Key.
   */
  sharedTransaction<T>(work: (unit: UnitOfWork) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.gathering.push({
        work,
        settle: (result) => {
          if (result.ok) resolve(result.value as T);
          else reject(asRequestError(result.error));
        },
      });
      if (this.sharing < SHARED_AT_ONCE) void this.commitGathered();
    });
  }

  private async commitGathered(): Promise<void> {
    this.sharing += 1;
    try {
      while (this.gathering.length > 0) {
        const group = this.gathering.splice(0, MAX_SHARED);
        try {
          const results = await this.withConnection(() =>
            this.transactions.runBatch(group, async (unit) => {
              for (const request of unit.items) await unit.step(request, () => request.work(unit));
            }),
          );
          results.forEach((result, index) => group[index].settle(result));
        } catch (error) {
          group.forEach((request) => request.settle({ ok: false, error }));
        }
      }
    } finally {
      this.sharing -= 1;
    }
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

/** A lost COMMIT reply is the client's to resolve: it may have landed, so only a retry with the same key is safe. */
function asRequestError(error: unknown): Error {
  if (error instanceof CommitOutcomeUnknownError) {
    return new RetryLaterException(
      'the database connection was lost while this request was being committed, so whether it was stored is ' +
        'unknown; retry with the same Idempotency-Key',
      1,
    );
  }
  return error instanceof Error ? error : new Error(String(error));
}

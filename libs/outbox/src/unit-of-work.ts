import type { DataSource, EntityManager, QueryRunner } from 'typeorm';
import type { OutgoingMessage } from '@shop/messaging';
import { writeOutboxRows } from './outbox';

/**
 * One local transaction and everything that belongs to it, in one object that is passed to every
 * call that reads or writes inside it: the transaction (its `manager`), the messages it will send
 * (the outbox buffer, inserted in one statement just before the commit and handed to the fast
 * path once committed), its savepoints, the items it handles together (a batch's messages, a
 * shared group's requests) and what runs before and after its commit. Nothing about a
 * transaction is kept anywhere else.
 */
export interface UnitOfWork<T = unknown> {
  /** The open transaction: read and write with it (repositories: `manager.getRepository(Entity)`). */
  readonly manager: EntityManager;
  /** What this unit handles together, in order: a batch's messages (one message alone is a batch of one). */
  readonly items: readonly T[];
  /** Sends `messages` if and only if this transaction commits (the transactional outbox). */
  send(messages: readonly OutgoingMessage[]): void;
  /** What `send` was given so far and is still to be written (tests, the operator view). */
  readonly outgoing: readonly OutgoingMessage[];
  /**
   * Runs `work` in a savepoint. If it throws, or `keep` says no to its result, everything it wrote
   * is rolled back, the messages it sent included; otherwise its writes stay in the transaction.
   */
  savepoint<R>(work: () => Promise<R>, keep?: (result: R) => boolean): Promise<R>;
  /**
   * Runs the work of one item of `items`: if it throws, the failure is that item's, and a batch
   * run (`Transactions.runBatch`) sets the item aside and runs the others again without it.
   */
  step<R>(item: T, work: () => Promise<R>): Promise<R>;
  /** Runs in the transaction, just before it commits (after the caller's work, before the outbox rows are written). */
  beforeCommit(callback: () => Promise<void>): void;
  /** Runs once the transaction committed (logs, metrics, wake-ups); never for work that was rolled back. */
  afterCommit(callback: () => void): void;
}

export type BatchResult<R> = { ok: true; value: R | undefined } | { ok: false; error: unknown };

export interface TransactionsOptions {
  /** Gets the messages of each committed transaction to the broker at once (the relay's fast path). */
  publishCommitted?(messages: readonly OutgoingMessage[]): void;
}

/** A failure inside `UnitOfWork.step`, attributed to its item. */
export class StepFailedError extends Error {
  override readonly name = 'StepFailedError';
  constructor(
    /** Where the item is in its unit's `items`. */
    readonly position: number | undefined,
    override readonly cause: unknown,
  ) {
    super(cause instanceof Error ? cause.message : String(cause));
  }
}

/**
 * The connection died while COMMIT was on its way, and the database could not be asked whether
 * it landed: the work may or may not have committed. Never run it again blindly.
 */
export class CommitOutcomeUnknownError extends Error {
  override readonly name = 'CommitOutcomeUnknownError';
  constructor(override readonly cause: unknown) {
    super(`the commit's outcome is unknown: ${cause instanceof Error ? cause.message : String(cause)}`);
  }
}

/**
 * Opens units of work on a data source. Every transaction that may write to the outbox is opened
 * here, so its messages are published once it committed (`publishCommitted`).
 */
export class Transactions {
  constructor(
    readonly dataSource: DataSource,
    private readonly options: TransactionsOptions = {},
  ) {}

  /** Runs `work` in a transaction of its own and commits it; throws what `work` threw, rolled back. */
  run<R>(work: (unit: UnitOfWork) => Promise<R>): Promise<R> {
    return this.transaction<never, R>([], work);
  }

  /**
   * Runs `work` for `items` in ONE transaction (one commit, one WAL flush for the lot). It is
   * optimistic: no savepoint per item. When an item's step fails, the transaction is rolled back,
   * that item is set aside and the others run again together; each item set aside then runs
   * alone, so a failing item fails alone and no item's outcome depends on which others shared its
   * batch. A failure that no step owns (the commit itself, a statement for the whole batch) runs
   * each item alone. `work` may therefore run more than once for an item, never with effect.
   * Answers each item's outcome, in order: its step's value, or the error it failed with alone.
   */
  async runBatch<T, R = unknown>(
    items: readonly T[],
    work: (unit: UnitOfWork<T>) => Promise<void>,
  ): Promise<Array<BatchResult<R>>> {
    const results = new Array<BatchResult<R>>(items.length);
    const setAside: number[] = [];
    let together = items.map((_, index) => index);
    while (together.length > 0) {
      const values = new Map<number, unknown>();
      try {
        await this.transaction(
          together.map((index) => items[index]),
          work,
          values,
        );
        together.forEach((index, position) => (results[index] = { ok: true, value: values.get(position) as R }));
        break;
      } catch (error) {
        if (error instanceof CommitOutcomeUnknownError || together.length === 1) {
          const cause = error instanceof StepFailedError ? error.cause : error;
          for (const index of together) results[index] = { ok: false, error: cause };
          break;
        }
        if (error instanceof StepFailedError && error.position !== undefined) {
          setAside.push(together[error.position]);
          together = together.filter((_, position) => position !== error.position);
          continue;
        }
        setAside.push(...together); // nobody's failure: each alone
        together = [];
      }
    }
    for (const index of setAside.sort((a, b) => a - b)) {
      [results[index]] = await this.runBatch<T, R>([items[index]], work);
    }
    return results;
  }

  private async transaction<T, R>(
    items: readonly T[],
    work: (unit: UnitOfWork<T>) => Promise<R>,
    values?: Map<number, unknown>,
  ): Promise<R> {
    const queryRunner = this.dataSource.createQueryRunner();
    const unit = new Unit<T>(queryRunner, items, values);
    let result: R;
    try {
      await queryRunner.startTransaction();
      result = await work(unit);
      await unit.finish();
    } catch (error) {
      if (queryRunner.isTransactionActive) await queryRunner.rollbackTransaction().catch(() => undefined);
      await queryRunner.release();
      throw error;
    }
    await this.commit(queryRunner, unit);
    this.options.publishCommitted?.(unit.outgoing);
    for (const callback of unit.afterCommitCallbacks) callback();
    return result;
  }

  /**
   * Commits; when COMMIT fails, asks the database (on another connection) whether the
   * transaction committed anyway (its reply was lost) before reporting a failure.
   */
  private async commit(queryRunner: QueryRunner, unit: Unit<unknown>): Promise<void> {
    try {
      await queryRunner.commitTransaction();
      return;
    } catch (error) {
      // A unit that wrote nothing lost nothing: its failed COMMIT is a plain failure.
      if (unit.transactionId === null) throw error;
      const status = await this.statusOf(unit.transactionId);
      if (status === 'committed') return;
      if (status === 'aborted') throw error;
      throw new CommitOutcomeUnknownError(error);
    } finally {
      await queryRunner.release();
    }
  }

  private async statusOf(transactionId: string | undefined): Promise<string | undefined> {
    if (transactionId === undefined) return undefined;
    try {
      const [row] = await this.dataSource.query<Array<{ status: string | null }>>(
        `SELECT pg_xact_status($1::xid8) AS status`,
        [transactionId],
      );
      return row?.status ?? undefined;
    } catch {
      return undefined;
    }
  }
}

class Unit<T> implements UnitOfWork<T> {
  readonly manager: EntityManager;
  readonly outgoing: OutgoingMessage[] = [];
  readonly afterCommitCallbacks: Array<() => void> = [];
  private readonly beforeCommitCallbacks: Array<() => Promise<void>> = [];
  private savepoints = 0;
  private readonly stepped = new Set<number>();
  /**
   * The database's id of this transaction, read just before COMMIT (to learn its fate if COMMIT
   * fails); null when it wrote nothing, undefined until read.
   */
  transactionId: string | null | undefined;

  constructor(
    private readonly queryRunner: QueryRunner,
    readonly items: readonly T[],
    /** Each step's value, by its item's position in `items`. */
    private readonly values = new Map<number, unknown>(),
  ) {
    this.manager = queryRunner.manager;
  }

  send(messages: readonly OutgoingMessage[]): void {
    this.outgoing.push(...messages);
  }

  async savepoint<R>(work: () => Promise<R>, keep: (result: R) => boolean = () => true): Promise<R> {
    const name = `unit_of_work_${++this.savepoints}`;
    const sent = this.outgoing.length;
    await this.queryRunner.query(`SAVEPOINT ${name}`);
    let result: R;
    try {
      result = await work();
    } catch (error) {
      await this.undo(name, sent);
      throw error;
    }
    if (keep(result)) await this.queryRunner.query(`RELEASE SAVEPOINT ${name}`);
    else await this.undo(name, sent);
    return result;
  }

  async step<R>(item: T, work: () => Promise<R>): Promise<R> {
    // The first position of this item not stepped yet (an item listed twice is two steps).
    let position = this.items.indexOf(item);
    while (position >= 0 && this.stepped.has(position)) position = this.items.indexOf(item, position + 1);
    if (position >= 0) this.stepped.add(position);
    try {
      const value = await work();
      if (position >= 0) this.values.set(position, value);
      return value;
    } catch (error) {
      throw error instanceof StepFailedError ? error : new StepFailedError(position >= 0 ? position : undefined, error);
    }
  }

  beforeCommit(callback: () => Promise<void>): void {
    this.beforeCommitCallbacks.push(callback);
  }

  afterCommit(callback: () => void): void {
    this.afterCommitCallbacks.push(callback);
  }

  /** The work is done: the before-commit callbacks, the outbox rows, and the transaction's id. */
  async finish(): Promise<void> {
    for (const callback of this.beforeCommitCallbacks) await callback();
    this.transactionId = await writeOutboxRows(this.manager, this.outgoing);
  }

  private async undo(name: string, sent: number): Promise<void> {
    await this.queryRunner.query(`ROLLBACK TO SAVEPOINT ${name}`);
    this.outgoing.length = sent;
  }
}

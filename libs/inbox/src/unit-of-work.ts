import type { DataSource, EntityManager } from 'typeorm';

/** Where a message handler does its work: an open transaction, and what to do once it committed. */
export interface UnitOfWork {
  /** The open transaction (or a savepoint of a batch's): write with it, the outbox included. */
  manager: EntityManager;
  /** Runs once the transaction committed (logs, metrics); never for work that was rolled back. */
  afterCommit(callback: () => void): void;
}

export type BatchResult<R> = { ok: true; value: R } | { ok: false; error: unknown };

/** Runs `work` in a transaction of its own; its after-commit callbacks run once it committed. */
export async function inTransaction<R>(dataSource: DataSource, work: (unit: UnitOfWork) => Promise<R>): Promise<R> {
  const callbacks: Array<() => void> = [];
  const value = await dataSource.transaction((manager) =>
    work({ manager, afterCommit: (callback) => callbacks.push(callback) }),
  );
  callbacks.forEach((callback) => callback());
  return value;
}

/**
 * Runs `work` for each item in ONE transaction, each in a savepoint of its own: one commit (and
 * one WAL flush) for the lot, while each item's effects stay all-or-nothing. An item that fails is
 * rolled back to its savepoint and reported, and the others go on; its after-commit callbacks are
 * dropped. If the transaction itself fails (a deadlock between batches, a serialization failure,
 * a lost connection), nothing of it counts and each item is run again alone, so no item's outcome
 * depends on which others shared its batch.
 */
export async function inOneTransaction<T, R>(
  dataSource: DataSource,
  items: readonly T[],
  work: (item: T, unit: UnitOfWork) => Promise<R>,
): Promise<Array<BatchResult<R>>> {
  if (items.length === 1) return [await settled(inTransaction(dataSource, (unit) => work(items[0], unit)))];
  const callbacks: Array<() => void> = [];
  let results: Array<BatchResult<R>>;
  try {
    results = await dataSource.transaction(async (manager) => {
      const outcomes: Array<BatchResult<R>> = [];
      for (const item of items) {
        const own: Array<() => void> = [];
        // A nested transaction is a savepoint: released on success, rolled back on failure.
        const outcome = await settled(
          manager.transaction((savepoint) => work(item, { manager: savepoint, afterCommit: (cb) => own.push(cb) })),
        );
        if (outcome.ok) callbacks.push(...own);
        outcomes.push(outcome);
      }
      return outcomes;
    });
  } catch {
    const alone: Array<BatchResult<R>> = [];
    for (const item of items) alone.push(await settled(inTransaction(dataSource, (unit) => work(item, unit))));
    return alone;
  }
  callbacks.forEach((callback) => callback());
  return results;
}

async function settled<R>(promise: Promise<R>): Promise<BatchResult<R>> {
  try {
    return { ok: true, value: await promise };
  } catch (error) {
    return { ok: false, error };
  }
}

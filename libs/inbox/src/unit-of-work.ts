import type { DataSource, EntityManager } from 'typeorm';

/** What a unit of work knows of each message of its batch: at least its id. */
export interface BatchMessage {
  messageId: string;
}

/** Where a message handler does its work: an open transaction, and what to do once it committed. */
export interface UnitOfWork<M extends BatchMessage = BatchMessage> {
  /** The open transaction (a whole batch's, or one message's): write with it, the outbox included. */
  manager: EntityManager;
  /** Runs once the transaction committed (logs, metrics); never for work that was rolled back. */
  afterCommit(callback: () => void): void;
  /** Runs in the transaction once its work is done, before it commits: writes kept back to be made together. */
  beforeCommit(callback: () => Promise<void>): void;
  /**
   * The messages handled in this unit when it is a batch's: each is handled with this unit, in
   * turn. Handlers may read or write for all of them at once (the inbox records their ids in one
   * statement; the two-phase-commit kit locks their transactions in one).
   */
  batch?: readonly M[];
}

export type BatchResult<R> = { ok: true; value: R } | { ok: false; error: unknown };

/** Runs `work` in a transaction of its own; its after-commit callbacks run once it committed. */
export async function inTransaction<R, M extends BatchMessage = BatchMessage>(
  dataSource: DataSource,
  work: (unit: UnitOfWork<M>) => Promise<R>,
): Promise<R> {
  const callbacks: Array<() => void> = [];
  const value = await dataSource.transaction(async (manager) => {
    const beforeCommit: Array<() => Promise<void>> = [];
    const done = await work({
      manager,
      afterCommit: (callback) => callbacks.push(callback),
      beforeCommit: (callback) => beforeCommit.push(callback),
    });
    for (const callback of beforeCommit) await callback();
    return done;
  });
  callbacks.forEach((callback) => callback());
  return value;
}

/**
 * Runs `work` for each item in ONE transaction: one commit (and one WAL flush) for the lot. It is
 * optimistic: no savepoint per item (two more round trips each, and a subtransaction each, which
 * past 64 in one transaction slows every snapshot in the database), because items rarely fail.
 * When one does, or the transaction itself fails (a deadlock between batches, a serialization
 * failure, a lost connection), nothing of the batch counts and each item is run again in a
 * transaction of its own: a failing item fails alone, and no item's outcome depends on which
 * others shared its batch. `work` may therefore run more than once for an item, never with effect.
 */
export async function inOneTransaction<T, R, M extends BatchMessage = BatchMessage>(
  dataSource: DataSource,
  items: readonly T[],
  work: (item: T, unit: UnitOfWork<M>) => Promise<R>,
  /** The message of an item: the batch's unit then lists them (`UnitOfWork.batch`), in the items' order. */
  messageOf?: (item: T) => M,
): Promise<Array<BatchResult<R>>> {
  if (items.length > 1) {
    const batch = messageOf && items.map(messageOf);
    const together = await settled(
      inTransaction(dataSource, async (unit) => {
        const values: R[] = [];
        for (const item of items) values.push(await work(item, { ...unit, batch }));
        return values;
      }),
    );
    if (together.ok) return together.value.map((value) => ({ ok: true, value }));
  }
  const alone: Array<BatchResult<R>> = [];
  for (const item of items) alone.push(await settled(inTransaction<R, M>(dataSource, (unit) => work(item, unit))));
  return alone;
}

async function settled<R>(promise: Promise<R>): Promise<BatchResult<R>> {
  try {
    return { ok: true, value: await promise };
  } catch (error) {
    return { ok: false, error };
  }
}

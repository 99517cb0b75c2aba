import type { Transactions, UnitOfWork } from '@shop/outbox';

/** What a protocol side handles: a batch of messages in one unit of work. */
export interface BatchHandler<M> {
  handle(unit: UnitOfWork<M>, messages: readonly M[]): Promise<void>;
}

/**
 * Handles `messages` as the transport does a batch: in one unit of work (`runBatch`), in the
 * order given. Answers each message's outcome and the statements the batch sent.
 */
export async function asBatch<M>(transactions: Transactions, handler: BatchHandler<M>, messages: M[]) {
  const statements: string[] = [];
  const outcomes = await transactions.runBatch(messages, (unit) => {
    // Every statement goes through the unit's query runner (its savepoints too).
    const queryRunner = unit.manager.queryRunner as unknown as { query(...args: unknown[]): Promise<unknown> };
    const query = queryRunner.query.bind(queryRunner);
    queryRunner.query = (sql, ...rest) => {
      statements.push(sql as string);
      return query(sql, ...rest);
    };
    return handler.handle(unit, unit.items);
  });
  return { outcomes: outcomes.map((outcome) => outcome.ok), statements };
}

/** One message alone: a batch of one (the one path); throws what it failed with. */
export async function handleAlone<M>(transactions: Transactions, handler: BatchHandler<M>, message: M): Promise<void> {
  const [outcome] = await transactions.runBatch([message], (unit) => handler.handle(unit, unit.items));
  if (!outcome.ok) throw outcome.error;
}

export const counting = (statements: string[], pattern: RegExp) => statements.filter((sql) => pattern.test(sql)).length;

import { CommitOutcomeUnknownError, type BatchResult, type Transactions, type UnitOfWork } from '@shop/outbox';
import { RetryLaterException } from './problem-details.filter';

/** At most this many requests share one transaction. */
const MAX_SHARED = 100;
/**
 * Shared transactions in flight at once: while one waits for its commit (the WAL flush) or a
 * lock, the next is written, so one slow group does not hold up every request behind it. Two
 * groups never deadlock each other for good: a group's failing item is set aside and run alone.
 */
const SHARED_AT_ONCE = 2;

/** Runs `work` on one of the request connections (RequestDatabase's turn-taking). */
export type WithConnection = <T>(work: () => Promise<T>) => Promise<T>;

/**
 * Requests of one kind that write together (group commit): those that come while SHARED_AT_ONCE
 * groups are being written join the next, so a burst costs a commit and a WAL flush per group,
 * not one each; alone, a request is written at once. `write` writes a group in its unit of work
 * (`unit.items`), set-based if it can, and gives each item its answer through `unit.step(item, …)`.
 * An item whose step fails fails alone: the group is rolled back and written again without it
 * (`Transactions.runBatch`), so `write` must not have effects outside the transaction (use the
 * unit's `afterCommit`). Made by `RequestDatabase.groupCommit`.
 */
export class GroupCommit<I, R> {
  private readonly gathering: Array<{ item: I; settle: (result: BatchResult<unknown>) => void }> = [];
  private sharing = 0;

  constructor(
    private readonly transactions: Transactions,
    private readonly withConnection: WithConnection,
    private readonly write: (unit: UnitOfWork<I>) => Promise<void>,
  ) {}

  /**
   * Writes `item` with the others gathered; answers its step's value, or rejects with its failure
   * alone (a COMMIT whose outcome is unknown as a 503: `asRequestError`).
   */
  run(item: I): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.gathering.push({
        item,
        settle: (result) => (result.ok ? resolve(result.value as R) : reject(asRequestError(result.error))),
      });
      if (this.sharing < SHARED_AT_ONCE) void this.writeGathered();
    });
  }

  private async writeGathered(): Promise<void> {
    this.sharing += 1;
    try {
      while (this.gathering.length > 0) {
        const group = this.gathering.splice(0, MAX_SHARED);
        try {
          const results = await this.withConnection(() =>
            this.transactions.runBatch(
              group.map((request) => request.item),
              this.write,
            ),
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
}

/** A lost COMMIT reply is the client's to resolve: it may have landed, so only a retry with the same key is safe. */
export function asRequestError(error: unknown): Error {
  if (error instanceof CommitOutcomeUnknownError) {
    return new RetryLaterException(
      'the database connection was lost while this request was being committed, so whether it was stored is ' +
        'unknown; retry with the same Idempotency-Key',
      1,
    );
  }
  return error instanceof Error ? error : new Error(String(error));
}

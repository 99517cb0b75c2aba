import type { DataSource } from 'typeorm';
import type { UnitOfWork } from '@shop/outbox';

/**
 * Records which messages a consumer has handled, so each is handled at most once per (consumer,
 * message id): the record is inserted in the handler's own transaction (its unit of work), so it
 * and the state change commit together or not at all. A concurrent second delivery waits on the
 * unique key and then sees the duplicate.
 */
export class Inbox {
  constructor(
    private readonly dataSource: DataSource,
    /** Names the handler; one message may be handled once by each consumer. */
    private readonly consumer: string,
  ) {}

  /**
   * In `unit`'s transaction, records `messageIds` as handled, in one statement, and answers those
   * handled for the first time (an id listed twice is one first time; one recorded before, or by a
   * concurrent transaction that commits, is not).
   */
  async record(unit: UnitOfWork<unknown>, messageIds: readonly string[]): Promise<Set<string>> {
    if (messageIds.length === 0) return new Set();
    const rows = await unit.manager.query<Array<{ message_id: string }>>(
      // In id order, so batches of two replicas that share a redelivered message cannot deadlock.
      `INSERT INTO inbox (consumer, message_id) SELECT DISTINCT $1, id FROM unnest($2::uuid[]) AS id ORDER BY 2
       ON CONFLICT DO NOTHING RETURNING message_id`,
      [this.consumer, messageIds],
    );
    return new Set(rows.map((row) => row.message_id));
  }

  /** Deletes records past retention (every consumer's); see `pruneInbox`. */
  prune(retentionMs: number): Promise<number> {
    return pruneInbox(this.dataSource, retentionMs);
  }
}

/**
 * Deletes inbox records older than `retentionMs`, at most 10,000 per call. A duplicate older
 * than that is still caught by the handlers' state checks (a re-sent message is answered from
 * the recorded state), so the inbox only has to cover the redelivery window.
 */
export async function pruneInbox(dataSource: DataSource, retentionMs: number): Promise<number> {
  const [, deleted] = await dataSource.query<[unknown, number]>(
    `DELETE FROM inbox WHERE ctid IN (
       SELECT ctid FROM inbox WHERE processed_at < now() - make_interval(secs => $1) LIMIT 10000)`,
    [retentionMs / 1000],
  );
  return deleted ?? 0;
}

import type { DataSource, EntityManager } from 'typeorm';

export type InboxResult<R> = { duplicate: true } | { duplicate: false; result: R };

/**
 * Runs a message handler at most once per (consumer, message id): the inbox row is inserted in
 * the handler's own transaction, so the record and the state change commit together or not at
 * all. A concurrent second delivery waits on the unique key and then sees the duplicate.
 */
export class Inbox {
  constructor(
    private readonly dataSource: DataSource,
    /** Names the handler; one message may be handled once by each consumer. */
    private readonly consumer: string,
  ) {}

  async handleOnce<R>(messageId: string, work: (manager: EntityManager) => Promise<R>): Promise<InboxResult<R>> {
    return this.dataSource.transaction(async (manager) => {
      if (!(await this.record(manager, messageId))) return { duplicate: true as const };
      return { duplicate: false as const, result: await work(manager) };
    });
  }

  /**
   * In the caller's transaction: records the message as handled; false if it already was (or a
   * concurrent transaction is recording it: this waits on the unique key, then sees the duplicate).
   */
  async record(manager: EntityManager, messageId: string): Promise<boolean> {
    const inserted = await manager.query<unknown[]>(
      `INSERT INTO inbox (consumer, message_id) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING message_id`,
      [this.consumer, messageId],
    );
    return inserted.length > 0;
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

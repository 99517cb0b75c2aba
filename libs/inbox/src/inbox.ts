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
      const inserted = await manager.query<unknown[]>(
        `INSERT INTO inbox (consumer, message_id) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING message_id`,
        [this.consumer, messageId],
      );
      if (inserted.length === 0) return { duplicate: true as const };
      return { duplicate: false as const, result: await work(manager) };
    });
  }

  /** Deletes records past retention; duplicates older than that are caught by the handlers' state checks. */
  async prune(retentionMs: number): Promise<number> {
    const [, deleted] = await this.dataSource.query<[unknown, number]>(
      `DELETE FROM inbox WHERE processed_at < now() - make_interval(secs => $1)`,
      [retentionMs / 1000],
    );
    return deleted ?? 0;
  }
}

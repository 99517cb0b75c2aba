import type { DataSource, EntityManager } from 'typeorm';
import type { UnitOfWork } from '@shop/outbox';

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

  /**
   * `record` in a unit of work. In a batch's unit (`batch`), the first call records every
   * message of the batch in one statement and the others find their answer there; a message id
   * listed twice is first-time once. (Each message is handled by one consumer, so recording the
   * batch under each consumer that handles some of it marks nothing it will ever be asked about.)
   */
  async recordIn(unit: UnitOfWork<{ messageId: string }>, messageId: string): Promise<boolean> {
    const batch = unit.items;
    if (batch.length < 2 || !batch.some((message) => message.messageId === messageId)) {
      return this.record(unit.manager, messageId);
    }
    const byConsumer = batchRecords.get(unit.manager) ?? new Map<string, Promise<Set<string>>>();
    batchRecords.set(unit.manager, byConsumer);
    let firstTime = byConsumer.get(this.consumer);
    if (!firstTime) {
      firstTime = unit.manager
        .query<Array<{ message_id: string }>>(
          // In id order, so batches of two replicas that share a redelivered message cannot deadlock.
          `INSERT INTO inbox (consumer, message_id) SELECT DISTINCT $1, id FROM unnest($2::uuid[]) AS id ORDER BY 2
           ON CONFLICT DO NOTHING RETURNING message_id`,
          [this.consumer, batch.map((message) => message.messageId)],
        )
        .then((rows) => new Set(rows.map((row) => row.message_id)));
      byConsumer.set(this.consumer, firstTime);
    }
    return (await firstTime).delete(messageId);
  }

  /** Deletes records past retention (every consumer's); see `pruneInbox`. */
  prune(retentionMs: number): Promise<number> {
    return pruneInbox(this.dataSource, retentionMs);
  }
}

/** Per batch transaction (its manager) and consumer: the batch's message ids not handled before, until each is taken. */
const batchRecords = new WeakMap<EntityManager, Map<string, Promise<Set<string>>>>();

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

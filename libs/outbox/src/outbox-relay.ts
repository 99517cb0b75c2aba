import type {
  DataSource,
  EntitySubscriberInterface,
  TransactionCommitEvent,
  TransactionRollbackEvent,
  TransactionStartEvent,
} from 'typeorm';
import { BrokerUnavailableError, Logger, OutgoingMessage, PublishResult } from '@shop/messaging';
import { deferOutboxWrites, forgetWrittenAfter, insertWritten, writtenBy } from './outbox';

export interface OutboxRelayOptions {
  dataSource: DataSource;
  /** Publishes with confirms; only confirmed messages are marked sent. */
  publish(messages: readonly OutgoingMessage[]): Promise<PublishResult>;
  logger: Logger;
  batchSize?: number;
  /** How often the safety net looks for rows still unsent when due. */
  pollIntervalMs?: number;
  /** Sent rows older than this are deleted. */
  retentionMs?: number;
  /** While a relay publishes the rows it claimed, no other relay takes them (a crashed relay's, after this). */
  leaseMs?: number;
  pruneIntervalMs?: number;
  /** Called after the broker confirmed a batch and before it is marked sent (observability; tests). */
  onPublished?(messageIds: readonly string[]): void | Promise<void>;
  /** Called once messages are marked sent, with each one's seconds from written to sent. */
  onSent?(lagSeconds: readonly number[]): void;
}

interface OutboxRow {
  message_id: string;
  message_type: string;
  routing_key: string;
  body: unknown;
  headers: Record<string, unknown>;
  attempts: number;
}

/** A row that failed waits 1 s, doubling up to a minute, before the relay tries it again. */
const RETRY_BASE_SECONDS = 1;
const RETRY_CAP_SECONDS = 60;
/**
 * Marks of rows sent by the fast path are written together, at most this often: one UPDATE for
 * many rows. Well inside FAST_PATH_GRACE_SECONDS, so the relay does not publish them again.
 */
const MARK_EVERY_MS = 250;

/**
 * Gets committed outbox rows to the broker, marking each sent only after the broker confirmed it,
 * so a crash between publish and mark re-publishes (consumers deduplicate) and never loses one.
 *
 * - **Fast path**: the process that committed rows publishes them at once (`publishCommitted`,
 *   called by `OutboxPublisher` after every commit) and marks them sent in batches.
 * - **Safety net**: a poll for rows still unsent when due: what a crash, a nack or an unroutable
 *   key left behind. It claims a batch with a lease (`FOR UPDATE SKIP LOCKED`, then commits: no
 *   transaction stays open while the broker confirms), so several relays never take the same row;
 *   a row that fails backs off on its own and never holds up the others.
 */
export class OutboxRelay {
  private readonly batchSize: number;
  private readonly pollIntervalMs: number;
  private readonly retentionMs: number;
  private readonly pruneIntervalMs: number;
  private readonly leaseMs: number;
  private running = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private pruneTimer: NodeJS.Timeout | undefined;
  private readonly inFlight = new Set<Promise<void>>();
  private marks: string[] = [];
  private marking: Promise<void> | undefined;
  private marksBeingWritten: Promise<void> | undefined;

  constructor(private readonly options: OutboxRelayOptions) {
    this.batchSize = options.batchSize ?? 200;
    this.pollIntervalMs = options.pollIntervalMs ?? 1_000;
    this.retentionMs = options.retentionMs ?? 24 * 3600_000;
    this.pruneIntervalMs = options.pruneIntervalMs ?? 60_000;
    this.leaseMs = options.leaseMs ?? 30_000;
  }

  start(): Promise<void> {
    if (this.running) return Promise.resolve();
    this.running = true;
    this.loop = this.run();
    this.pruneTimer = setInterval(() => void this.prune(), this.pruneIntervalMs);
    this.pruneTimer.unref();
    return Promise.resolve();
  }

  /** Stops the relay after publishing what is already committed (best effort, one last drain). */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    clearInterval(this.pruneTimer);
    this.wake?.();
    await this.loop;
    await this.settle();
    await this.drain().catch((err: unknown) => this.options.logger.warn(`final outbox drain failed: ${String(err)}`));
  }

  /**
   * The fast path: publishes rows a transaction of this process just committed, and marks them
   * sent soon after. What fails stays unsent for the safety net; nothing here throws.
   */
  publishCommitted(messages: readonly OutgoingMessage[]): void {
    if (messages.length === 0) return;
    const work = this.options
      .publish(messages)
      .then(async (result) => {
        if (result.confirmed.length > 0) {
          await this.options.onPublished?.(result.confirmed);
          this.marks.push(...result.confirmed);
          this.scheduleMarks();
        }
        if (result.failed.length > 0) {
          this.options.logger.debug?.(
            `${result.failed.length} message(s) left to the outbox relay: ${summary(result)}`,
          );
        }
      })
      .catch((err: unknown) => this.options.logger.debug?.(`fast publish failed, left to the relay: ${String(err)}`))
      .finally(() => this.inFlight.delete(work));
    this.inFlight.add(work);
  }

  /**
   * Waits for the fast path's publishes in flight now, and writes their marks (tests, shutdown).
   * Only those: under load new ones keep starting, and a shutdown must not wait for a lull.
   */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
    await this.marksBeingWritten;
    if (this.marks.length > 0) await this.writeMarks();
  }

  /**
   * Publishes every unsent row now, including those just written (left to the fast path), but
   * not those another relay is publishing or that back off after a failure; returns how many.
   */
  async drain(): Promise<number> {
    let total = 0;
    for (;;) {
      const published = await this.publishBatch({ dueOnly: false });
      total += published;
      if (published < this.batchSize) return total;
    }
  }

  /** Deletes sent rows past retention. */
  async prune(): Promise<void> {
    try {
      await this.options.dataSource.query(
        `DELETE FROM outbox WHERE id IN (
           SELECT id FROM outbox WHERE sent_at < now() - make_interval(secs => $1) LIMIT 10000)`,
        [this.retentionMs / 1000],
      );
    } catch (err) {
      this.options.logger.warn(`outbox prune failed: ${String(err)}`);
    }
  }

  private async run(): Promise<void> {
    while (this.running) {
      try {
        while ((await this.publishBatch({ dueOnly: true })) === this.batchSize && this.running);
      } catch (err) {
        const known = err instanceof BrokerUnavailableError || err instanceof NotPublishedError;
        this.options.logger.warn(`outbox relay: ${known ? err.message : String(err)}; will retry`);
      }
      if (this.running) await this.sleep(this.pollIntervalMs);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = () => {
        this.wake = undefined;
        done();
      };
    });
  }

  /**
   * Claims a batch (due rows; with `dueOnly` false also rows never tried), leases it and commits;
   * publishes it; marks what the broker confirmed and backs off what it did not.
   */
  private async publishBatch({ dueOnly }: { dueOnly: boolean }): Promise<number> {
    const [rows] = await this.options.dataSource.query<[OutboxRow[], number]>(
      `UPDATE outbox o SET attempts = o.attempts + 1, next_attempt_at = now() + make_interval(secs => $2)
         FROM (SELECT id FROM outbox
                WHERE sent_at IS NULL AND (next_attempt_at <= now() ${dueOnly ? '' : 'OR attempts = 0'})
                ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED) due
        WHERE o.id = due.id
       RETURNING o.message_id, o.message_type, o.routing_key, o.body, o.headers, o.attempts`,
      [this.batchSize, this.leaseMs / 1000],
    );
    if (rows.length === 0) return 0;
    const result = await this.options.publish(
      rows.map((row) => ({
        messageId: row.message_id,
        type: row.message_type,
        routingKey: row.routing_key,
        body: row.body,
        headers: row.headers,
      })),
    );
    if (result.confirmed.length > 0) {
      await this.options.onPublished?.(result.confirmed);
      await this.markSent(result.confirmed);
    }
    if (result.failed.length > 0) {
      const attemptsOf = new Map(rows.map((row) => [row.message_id, row.attempts]));
      const failed = result.failed.map((failure) => failure.messageId);
      await this.options.dataSource.query(
        `UPDATE outbox o SET next_attempt_at = now() + make_interval(secs => f.delay)
           FROM unnest($1::uuid[], $2::float8[]) AS f(message_id, delay) WHERE o.message_id = f.message_id`,
        [failed, failed.map((id) => retryDelaySeconds(attemptsOf.get(id) ?? 1))],
      );
      throw new NotPublishedError(
        `${result.failed.length} of ${rows.length} outbox messages not published (${summary(result, rows)})`,
      );
    }
    return rows.length;
  }

  private scheduleMarks(): void {
    if (this.marking) return;
    this.marking = new Promise<void>((resolve) => setTimeout(resolve, MARK_EVERY_MS))
      .then(() => this.flushMarks())
      .finally(() => (this.marking = undefined));
  }

  private async flushMarks(): Promise<void> {
    while (this.marks.length > 0) await this.writeMarks();
  }

  /** Writes the marks collected so far (one UPDATE); a failure is logged, never thrown. */
  private writeMarks(): Promise<void> {
    const ids = this.marks.splice(0);
    this.marksBeingWritten = this.markSent(ids).catch((err: unknown) =>
      // Unmarked rows are published again by the safety net; the inboxes drop the copies.
      this.options.logger.warn(`could not mark ${ids.length} outbox message(s) sent: ${String(err)}`),
    );
    return this.marksBeingWritten;
  }

  /**
   * Marks rows sent. Committed without waiting for the disk (`synchronous_commit = off`): a mark
   * lost in a crash only makes the relay publish that row again, which the inboxes deduplicate.
   */
  private async markSent(messageIds: readonly string[]): Promise<void> {
    // One statement, committed on its own: the CTE turns synchronous_commit off for just this
    // transaction (set_config(..., true)), which is what its commit then uses.
    const [marked] = await this.options.dataSource.query<[Array<{ lag: number }>, number]>(
      `WITH async_commit AS (SELECT set_config('synchronous_commit', 'off', true))
       UPDATE outbox SET sent_at = now() FROM async_commit
        WHERE message_id = ANY($1::uuid[]) AND sent_at IS NULL
       RETURNING extract(epoch FROM clock_timestamp() - created_at)::float8 AS lag`,
      [messageIds],
    );
    // The lag is measured on the database's clock, the one that stamped created_at.
    if (marked.length > 0) this.options.onSent?.(marked.map((row) => row.lag));
  }
}

/**
 * A TypeORM subscriber for the outbox rows of every transaction of its data source: inserts them
 * in one statement just before the commit, hands them to the relay's fast path once committed,
 * and forgets those of a rolled-back transaction or savepoint. Register it on the data source
 * (`dataSource.subscribers.push(...)`) before the first transaction that writes to the outbox.
 */
export class OutboxPublisher implements EntitySubscriberInterface {
  /** Per query runner: how many rows were written when each open (sub)transaction began. */
  private readonly savepoints = new WeakMap<object, number[]>();

  constructor(private readonly relay: OutboxRelay) {}

  afterTransactionStart({ queryRunner }: TransactionStartEvent): void {
    const stack = this.savepoints.get(queryRunner) ?? [];
    stack.push(writtenBy(queryRunner).length);
    this.savepoints.set(queryRunner, stack);
    deferOutboxWrites(queryRunner); // this subscriber inserts them before the commit
  }

  /** The whole transaction's rows in one INSERT, just before it commits (not when a savepoint is released). */
  async beforeTransactionCommit({ queryRunner }: TransactionCommitEvent): Promise<void> {
    if (this.savepoints.get(queryRunner)?.length === 1) await insertWritten(queryRunner);
  }

  afterTransactionCommit({ queryRunner }: TransactionCommitEvent): void {
    this.savepoints.get(queryRunner)?.pop();
    if (queryRunner.isTransactionActive) return; // a savepoint released: its rows wait for the commit
    const written = [...writtenBy(queryRunner)];
    this.ended(queryRunner);
    this.relay.publishCommitted(written);
  }

  afterTransactionRollback({ queryRunner }: TransactionRollbackEvent): void {
    forgetWrittenAfter(queryRunner, this.savepoints.get(queryRunner)?.pop() ?? 0);
    if (!queryRunner.isTransactionActive) this.ended(queryRunner);
  }

  /** The query runner may serve another transaction next: it starts with nothing written. */
  private ended(queryRunner: TransactionCommitEvent['queryRunner']): void {
    forgetWrittenAfter(queryRunner, 0);
    deferOutboxWrites(queryRunner, false);
    this.savepoints.delete(queryRunner);
  }
}

function retryDelaySeconds(attempts: number): number {
  return Math.min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * 2 ** Math.max(0, attempts - 1));
}

/** "2× inventory.prepare: no queue bound …" per distinct failure. */
function summary(result: PublishResult, rows?: readonly OutboxRow[]): string {
  const routingKeyOf = new Map(rows?.map((row) => [row.message_id, row.routing_key]));
  const counts = new Map<string, number>();
  for (const { messageId, error } of result.failed) {
    const failure = `${routingKeyOf.get(messageId) ?? ''}${rows ? ': ' : ''}${error.message.replace(messageId, '<id>')}`;
    counts.set(failure, (counts.get(failure) ?? 0) + 1);
  }
  return [...counts].map(([failure, n]) => `${n}× ${failure}`).join('; ');
}

/** Some messages of a batch were not confirmed (nacked, unroutable, channel closed); they stay unsent. */
class NotPublishedError extends Error {
  override readonly name = 'NotPublishedError';
}

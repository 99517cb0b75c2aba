import type { DataSource } from 'typeorm';
import {
  backoffMs,
  BrokerUnavailableError,
  Logger,
  OutgoingMessage,
  PeriodicTask,
  PublishResult,
} from '@shop/messaging';
import { ClaimedRow, claimRows, giveGraceBack, giveLeaseBack, markSent, pruneSent, retryLater } from './relay-rows';

export interface OutboxRelayOptions {
  dataSource: DataSource;
  /** Publishes with confirms; only confirmed messages are marked sent. */
  publish(messages: readonly OutgoingMessage[]): Promise<PublishResult>;
  /**
   * Whether the broker can take messages now (e.g. `ConfirmPublisher.isAvailable`). While it is
   * known to be down the relay claims nothing: its rows stay due, to go as soon as it is back
   * (call `wake()` when the connection comes back). Without it, the relay finds out by trying.
   */
  brokerAvailable?(): boolean;
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

/**
 * A row the broker refused on its own (nack, no queue bound) waits 0.5–1 s, doubling up to
 * 2.5–5 s, before the relay tries it again: well inside the prepare deadline (15 s), so a
 * refusal that clears (a queue elects a new leader, a binding comes) costs an order no timeout.
 */
const ROW_RETRY = { baseMs: 1_000, capMs: 5_000 };
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
 *   called by `Transactions` after every commit) and marks them sent in batches.
 * - **Safety net**: a poll for rows still unsent when due: what a crash, a nack, an unroutable
 *   key or a broker outage left behind. It claims a batch with a lease, so several relays never
 *   take the same row; a row the broker refuses backs off on its own and never holds up the
 *   others. A broker outage is nobody's fault: the relay claims nothing while the broker is known
 *   down, and what could not go because it was down is due again at once, so it goes within one
 *   poll (or at once, on `wake()`) of the broker's return.
 */
export class OutboxRelay {
  private readonly batchSize: number;
  private readonly leaseMs: number;
  private readonly retentionMs: number;
  private readonly polling: PeriodicTask;
  private readonly pruning: PeriodicTask;
  private started = false;
  private readonly inFlight = new Set<Promise<void>>();
  private marks: string[] = [];
  private marking: Promise<void> | undefined;
  private marksBeingWritten: Promise<void> | undefined;

  constructor(private readonly options: OutboxRelayOptions) {
    this.batchSize = options.batchSize ?? 200;
    this.leaseMs = options.leaseMs ?? 30_000;
    this.retentionMs = options.retentionMs ?? 24 * 3600_000;
    this.polling = new PeriodicTask('outbox relay', options.pollIntervalMs ?? 1_000, () => this.poll(), options.logger);
    this.pruning = new PeriodicTask(
      'outbox prune',
      options.pruneIntervalMs ?? 60_000,
      () => this.prune(),
      options.logger,
    );
  }

  start(): Promise<void> {
    if (this.started) return Promise.resolve();
    this.started = true;
    this.polling.start();
    this.polling.wake(); // what an earlier run left unsent goes now, not one interval later
    this.pruning.start();
    return Promise.resolve();
  }

  /** Polls now (or right after the poll in progress): e.g. once the broker connection is back. */
  wake(): void {
    this.polling.wake();
  }

  /** Stops the relay after publishing what is already committed (best effort, one last drain). */
  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    await Promise.all([this.polling.stop(), this.pruning.stop()]);
    await this.settle();
    await this.drain().catch((err: unknown) => this.options.logger.warn(`final outbox drain failed: ${String(err)}`));
  }

  /**
   * The fast path: publishes rows a transaction of this process just committed, and marks them
   * sent soon after. What fails stays unsent for the safety net (at once, when the broker was
   * unavailable); nothing here throws.
   */
  publishCommitted(messages: readonly OutgoingMessage[]): void {
    if (messages.length === 0) return;
    const ids = () => messages.map((message) => message.messageId);
    const work = this.options
      .publish(messages)
      .then(async (result) => {
        if (result.confirmed.length > 0) {
          await this.options.onPublished?.(result.confirmed);
          this.marks.push(...result.confirmed);
          this.scheduleMarks();
        }
        if (result.failed.length === 0) return;
        this.options.logger.debug?.(`${result.failed.length} message(s) left to the outbox relay: ${summary(result)}`);
        if (!this.brokerAvailable()) await giveGraceBack(this.options.dataSource, failedIds(result));
      })
      .catch(async (err: unknown) => {
        this.options.logger.debug?.(`fast publish failed, left to the relay: ${String(err)}`);
        if (this.outage(err)) await giveGraceBack(this.options.dataSource, ids());
      })
      .catch((err: unknown) => this.options.logger.warn(`outbox: could not leave rows to the relay: ${String(err)}`))
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
      const published = await this.publishBatch({ includeNew: true });
      total += published;
      if (published < this.batchSize) return total;
    }
  }

  /** Deletes sent rows past retention. */
  async prune(): Promise<void> {
    try {
      await pruneSent(this.options.dataSource, this.retentionMs);
    } catch (err) {
      this.options.logger.warn(`outbox prune failed: ${String(err)}`);
    }
  }

  /** One round of the safety net: due rows, a batch after another while batches come full. */
  private async poll(): Promise<void> {
    // While the broker is known down nothing is claimed: the rows stay due for its return.
    while (this.started && this.brokerAvailable()) {
      if ((await this.publishBatch({ includeNew: false })) < this.batchSize) return;
    }
  }

  /**
   * Claims a batch, publishes it, marks what the broker confirmed. What the broker could not take
   * because it was unavailable is due again at once; what it refused backs off, row by row.
   */
  private async publishBatch({ includeNew }: { includeNew: boolean }): Promise<number> {
    if (!this.brokerAvailable()) throw new BrokerUnavailableError('the broker is unavailable: nothing claimed');
    const { dataSource } = this.options;
    const rows = await claimRows(dataSource, { limit: this.batchSize, leaseMs: this.leaseMs, includeNew });
    if (rows.length === 0) return 0;
    let result: PublishResult;
    try {
      result = await this.options.publish(rows.map((row) => row.message));
    } catch (err) {
      const ids = rows.map((row) => row.message.messageId);
      await (this.outage(err) ? giveLeaseBack(dataSource, ids) : this.retryLater(rows, ids));
      throw err;
    }
    if (result.confirmed.length > 0) {
      await this.options.onPublished?.(result.confirmed);
      await this.markSent(result.confirmed);
    }
    if (result.failed.length > 0) {
      const failed = failedIds(result);
      await (this.brokerAvailable() ? this.retryLater(rows, failed) : giveLeaseBack(dataSource, failed));
      throw new NotPublishedError(
        `${result.failed.length} of ${rows.length} outbox messages not published (${summary(result, rows)})`,
      );
    }
    return rows.length;
  }

  private brokerAvailable(): boolean {
    return this.options.brokerAvailable?.() ?? true;
  }

  /** Whether a publish failed because the broker was unavailable (not because of its messages). */
  private outage(err: unknown): boolean {
    return err instanceof BrokerUnavailableError || !this.brokerAvailable();
  }

  private retryLater(rows: readonly ClaimedRow[], ids: readonly string[]): Promise<void> {
    const attemptsOf = new Map(rows.map((row) => [row.message.messageId, row.attempts]));
    const delays = ids.map((id) => backoffMs((attemptsOf.get(id) ?? 1) - 1, ROW_RETRY));
    return retryLater(this.options.dataSource, ids, delays);
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

  private async markSent(messageIds: readonly string[]): Promise<void> {
    const lags = await markSent(this.options.dataSource, messageIds);
    if (lags.length > 0) this.options.onSent?.(lags);
  }
}

function failedIds(result: PublishResult): string[] {
  return result.failed.map((failure) => failure.messageId);
}

/** "2× inventory.prepare: no queue bound …" per distinct failure. */
function summary(result: PublishResult, rows?: readonly ClaimedRow[]): string {
  const routingKeyOf = new Map(rows?.map((row) => [row.message.messageId, row.message.routingKey]));
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

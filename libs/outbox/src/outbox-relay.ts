import { Client } from 'pg';
import type { DataSource } from 'typeorm';
import { BrokerUnavailableError, Logger, OutgoingMessage, PublishResult } from '@shop/messaging';

export interface OutboxRelayOptions {
  dataSource: DataSource;
  /** Publishes with confirms; only confirmed messages are marked sent. */
  publish(messages: readonly OutgoingMessage[]): Promise<PublishResult>;
  /** Connection string for the dedicated LISTEN connection (the pool's connections come and go). */
  listenUrl: string;
  logger: Logger;
  batchSize?: number;
  /** Fallback poll when no NOTIFY arrives (lost LISTEN connection, notifications from a replica...). */
  pollIntervalMs?: number;
  /** Sent rows older than this are deleted. */
  retentionMs?: number;
  pruneIntervalMs?: number;
  /** Called after the broker confirmed a batch and before it is marked sent (observability; tests). */
  onPublished?(messageIds: readonly string[]): void | Promise<void>;
  /** Called once a batch is marked sent and committed, with each message's seconds from written to sent. */
  onSent?(lagSeconds: readonly number[]): void;
}

interface OutboxRow {
  id: string;
  message_id: string;
  message_type: string;
  routing_key: string;
  body: unknown;
  headers: Record<string, unknown>;
}

/**
 * Publishes committed outbox rows and marks them sent only after the broker confirmed them, so a
 * crash between publish and mark re-publishes (consumers deduplicate) and never loses a message.
 * Wakes on LISTEN/NOTIFY, polls as a fallback, and is safe to run in several replicas: each batch
 * is claimed with `FOR UPDATE SKIP LOCKED`.
 */
export class OutboxRelay {
  private readonly batchSize: number;
  private readonly pollIntervalMs: number;
  private readonly retentionMs: number;
  private readonly pruneIntervalMs: number;
  private listener: Client | undefined;
  private running = false;
  private wake: (() => void) | undefined;
  private pending = false;
  private loop: Promise<void> | undefined;
  private pruneTimer: NodeJS.Timeout | undefined;
  private channel = '';

  constructor(private readonly options: OutboxRelayOptions) {
    this.batchSize = options.batchSize ?? 200;
    this.pollIntervalMs = options.pollIntervalMs ?? 1_000;
    this.retentionMs = options.retentionMs ?? 24 * 3600_000;
    this.pruneIntervalMs = options.pruneIntervalMs ?? 60_000;
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    const [{ schema }] = await this.options.dataSource.query<Array<{ schema: string }>>(
      `SELECT current_schema() AS schema`,
    );
    this.channel = `${schema}.outbox`;
    await this.listen();
    this.loop = this.run();
    this.pruneTimer = setInterval(() => void this.prune(), this.pruneIntervalMs);
    this.pruneTimer.unref();
  }

  /** Stops the relay after publishing what is already committed (best effort, one last drain). */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    clearInterval(this.pruneTimer);
    this.notify();
    await this.loop;
    await this.drain().catch((err: unknown) => this.options.logger.warn(`final outbox drain failed: ${String(err)}`));
    const listener = this.listener;
    this.listener = undefined;
    await listener?.end().catch(() => undefined);
  }

  /** Publishes every unsent row now; returns how many were published. */
  async drain(): Promise<number> {
    let total = 0;
    for (;;) {
      const published = await this.publishBatch();
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

  private notify(): void {
    this.pending = true;
    this.wake?.();
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (this.running) {
      this.pending = false;
      try {
        await this.drain();
        failures = 0;
      } catch (err) {
        failures += 1;
        const known = err instanceof BrokerUnavailableError || err instanceof NotPublishedError;
        this.options.logger.warn(`outbox relay: ${known ? err.message : String(err)}; will retry`);
      }
      if (!this.running) break;
      // While the broker refuses, back off: new rows' NOTIFYs must not turn this into a busy loop.
      if (failures > 0) await new Promise((resolve) => setTimeout(resolve, this.backoffMs(failures)));
      else if (!this.pending) await this.sleep(this.pollIntervalMs);
      if (!this.listener && this.running) await this.listen();
    }
  }

  /** 50 ms, doubling, up to the poll interval. */
  private backoffMs(failures: number): number {
    return Math.min(this.pollIntervalMs, 50 * 2 ** (failures - 1));
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

  /** Claims a batch, publishes it, marks what the broker confirmed; all in one transaction. */
  private async publishBatch(): Promise<number> {
    const lagSeconds: number[] = [];
    const published = await this.options.dataSource.transaction(async (manager) => {
      const rows = await manager.query<OutboxRow[]>(
        `SELECT id, message_id, message_type, routing_key, body, headers
           FROM outbox WHERE sent_at IS NULL
          ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED`,
        [this.batchSize],
      );
      if (rows.length === 0) return { rows, failed: [] };
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
        // The lag is measured on the database's clock, the one that stamped created_at.
        const [marked] = await manager.query<[Array<{ lag: number }>, number]>(
          `UPDATE outbox SET sent_at = now() WHERE message_id = ANY($1::uuid[])
           RETURNING extract(epoch FROM clock_timestamp() - created_at)::float8 AS lag`,
          [result.confirmed],
        );
        lagSeconds.push(...marked.map((row) => row.lag));
      }
      return { rows, failed: result.failed };
    });
    if (lagSeconds.length > 0) this.options.onSent?.(lagSeconds);
    if (published.failed.length > 0) {
      // What was confirmed is marked sent (committed above); the rest stays for the next attempt.
      const routingKeyOf = new Map(published.rows.map((row) => [row.message_id, row.routing_key]));
      const counts = new Map<string, number>();
      for (const { messageId, error } of published.failed) {
        const failure = `${routingKeyOf.get(messageId)}: ${error.message.replace(messageId, '<id>')}`;
        counts.set(failure, (counts.get(failure) ?? 0) + 1);
      }
      const summary = [...counts].map(([failure, n]) => `${n}× ${failure}`).join('; ');
      throw new NotPublishedError(
        `${published.failed.length} of ${published.rows.length} outbox messages not published (${summary})`,
      );
    }
    return published.rows.length;
  }

  private async listen(): Promise<void> {
    const client = new Client({ connectionString: this.options.listenUrl });
    client.on('notification', () => this.notify());
    client.on('error', (err) => {
      this.options.logger.warn(`outbox LISTEN connection lost (${err.message}); polling until it is back`);
      if (this.listener === client) this.listener = undefined;
      void client.end().catch(() => undefined);
    });
    try {
      await client.connect();
      await client.query(`LISTEN "${this.channel.replaceAll('"', '""')}"`);
      this.listener = client;
    } catch (err) {
      this.options.logger.warn(`outbox LISTEN failed (${String(err)}); polling`);
      await client.end().catch(() => undefined);
    }
  }
}

/** Some messages of a batch were not confirmed (nacked, unroutable, channel closed); they stay unsent. */
class NotPublishedError extends Error {
  override readonly name = 'NotPublishedError';
}

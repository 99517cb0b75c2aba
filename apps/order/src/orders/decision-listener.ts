import { Inject, Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { backoffMs } from '@shop/messaging';
import { SERVICE_CONFIG, sessionLimitOptions, sessionLimits, type BaseConfig } from '@shop/service-kit';
import { ORDER_DECIDED_CHANNEL } from './order-decisions';

/** What a subscriber hears: an order decided (by any replica), or that some may have been missed. */
export interface DecisionSubscriber {
  decided(orderId: string): void;
  /** The LISTEN connection was lost and is back: decisions in between were not announced. */
  resync(): void;
}

/** Reconnects wait 100 ms, doubling up to 5 s (the project's one backoff). */
const RECONNECT = { baseMs: 100, capMs: 5_000 };
/** Announced ids confirmed in one query, and held while one runs; beyond, subscribers resync. */
const CONFIRM_BATCH = 10_000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Announces decided orders to this process. Decisions may be taken by any replica, so they come
 * through Postgres NOTIFY, on one LISTEN connection per process opened at start-up and reopened
 * (with backoff) after a loss. Waiting requests (`Prefer: wait`) and admission control listen.
 *
 * NOTIFY takes no privilege: any role of the database (payment's, on a shared server) can send
 * on this channel. An announcement is therefore only a hint: its ids are confirmed decided by a
 * read of the orders (on the LISTEN connection, a batch at a time) before a subscriber hears them.
 */
@Injectable()
export class DecisionListener implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(DecisionListener.name);
  private readonly subscribers = new Set<DecisionSubscriber>();
  private client: Client | undefined;
  private channel = '';
  private stopped = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  /** Announced ids to confirm, in arrival order; `missed`: some were dropped (too many). */
  private readonly hinted = new Set<string>();
  private missed = false;
  private confirming = false;

  constructor(
    private readonly dataSource: DataSource,
    @Inject(SERVICE_CONFIG) private readonly config: BaseConfig,
  ) {}

  subscribe(subscriber: DecisionSubscriber): () => void {
    this.subscribers.add(subscriber);
    return () => this.subscribers.delete(subscriber);
  }

  get listening(): boolean {
    return this.client !== undefined;
  }

  async onApplicationBootstrap(): Promise<void> {
    const [{ schema }] = await this.dataSource.query<Array<{ schema: string }>>(`SELECT current_schema() AS schema`);
    this.channel = `${schema}.${ORDER_DECIDED_CHANNEL}`;
    await this.connect(0);
  }

  async onModuleDestroy(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }

  /** Opens the LISTEN connection; `failures` is how many tries in a row failed before this one. */
  private async connect(failures: number): Promise<void> {
    if (this.stopped) return;
    const client = new Client({
      connectionString: this.config.DATABASE_URL,
      application_name: 'order-decision-listener',
      // Keepalives above all: a LISTEN connection to a vanished host would otherwise wait silently for ever.
      ...sessionLimitOptions(sessionLimits(this.config)),
    });
    client.on('notification', (notification) => this.hint(client, notification.payload ?? ''));
    client.on('error', (err) => {
      if (this.client !== client) return;
      this.logger.warn(`decision LISTEN connection lost (${err.message}); reconnecting`);
      this.client = undefined;
      void client.end().catch(() => undefined);
      this.retry(0);
    });
    try {
      await client.connect();
      await client.query(`LISTEN "${this.channel.replaceAll('"', '""')}"`);
    } catch (err) {
      await client.end().catch(() => undefined);
      return this.retry(failures + 1, `decision LISTEN failed (${String(err)})`);
    }
    this.client = client;
    // Whatever was decided while we were not listening went unannounced.
    for (const subscriber of this.subscribers) subscriber.resync();
  }

  /** An announced id: heard once the database says its order is decided. */
  private hint(client: Client, orderId: string): void {
    if (!UUID.test(orderId)) return; // no order's id: forged or garbled
    if (this.hinted.size < CONFIRM_BATCH) this.hinted.add(orderId.toLowerCase());
    else this.missed = true;
    void this.confirm(client);
  }

  /** Confirms the hinted ids, a batch per query, one query at a time (ids heard meanwhile wait their turn). */
  private async confirm(client: Client): Promise<void> {
    if (this.confirming) return;
    this.confirming = true;
    try {
      while (this.hinted.size > 0 && this.client === client) {
        const ids = [...this.hinted];
        this.hinted.clear();
        const { rows } = await client.query<{ id: string }>(
          `SELECT id FROM orders WHERE id = ANY($1::uuid[]) AND status <> 'PENDING'`,
          [ids],
        );
        for (const { id } of rows) for (const subscriber of this.subscribers) subscriber.decided(id);
      }
    } catch (err) {
      this.logger.warn(`could not confirm announced decisions (${String(err)}); resyncing`);
      this.missed = true;
    } finally {
      this.confirming = false;
    }
    if (this.missed) {
      this.missed = false;
      for (const subscriber of this.subscribers) subscriber.resync();
    }
  }

  private retry(failures: number, why?: string): void {
    if (this.stopped) return;
    const delayMs = backoffMs(failures, RECONNECT);
    if (why) this.logger.warn(`${why}; retrying in ${delayMs} ms`);
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => void this.connect(failures), delayMs);
    this.reconnectTimer.unref();
  }
}

import { Inject, Injectable } from '@nestjs/common';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ServiceName } from '@shop/contracts';
import type { Settlement } from '@shop/messaging';
import { ManagementDatabase, type Queryable } from './management-database';
import { SERVICE_NAME } from './tokens';

/**
 * The service's Prometheus metrics, served at /metrics on the management port (`ManagementServer`): Node's default process metrics and its
 * messaging's (consumer, outbox relay). Labels are low-cardinality on purpose (message type,
 * outcome, reason class), never an id. The libraries report through plain hooks; libraries with
 * metrics of their own (the protocol kit, the order service's admission) add them to `registry`.
 */
@Injectable()
export class ServiceMetrics {
  readonly registry = new Registry();
  private readonly consumed: Counter<'type' | 'outcome'>;
  private readonly deadLettered: Counter<'reason'>;
  private readonly relayLag: Histogram;

  constructor(
    @Inject(SERVICE_NAME) service: ServiceName,
    private readonly database: ManagementDatabase,
  ) {
    const registers = [this.registry];
    this.registry.setDefaultLabels({ service });
    collectDefaultMetrics({ register: this.registry });
    this.consumed = new Counter({
      name: 'checkout_messages_consumed_total',
      help: 'Checkout messages consumed, by type and how their delivery ended (handled, retried, dead-lettered, requeued)',
      labelNames: ['type', 'outcome'],
      registers,
    });
    this.deadLettered = new Counter({
      name: 'checkout_messages_dead_lettered_total',
      help: 'Messages moved to the dead-letter queue, by reason: invalid, forged (sender not authentic), handler-failed',
      labelNames: ['reason'],
      registers,
    });
    this.relayLag = new Histogram({
      name: 'checkout_outbox_relay_lag_seconds',
      help: 'Time from a message written to the outbox to it marked sent, once the broker confirmed it (marks are written every 250 ms)',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.databaseGauge('checkout_outbox_unsent_messages', 'Outbox messages not yet published (backlog)', async (db) => {
      const [row] = await db.query<Array<{ count: number }>>(
        `SELECT count(*)::int AS count FROM outbox WHERE sent_at IS NULL`,
      );
      return row.count;
    });
  }

  /**
   * A gauge read from the database on a timer, through the management connection (see
   * `ManagementDatabase`), never on a scrape nor through the service's pool. NaN (unknown) until
   * read and when reading fails, never a reassuring 0: an alert on it must not go quiet because
   * the database is down.
   */
  databaseGauge(name: string, help: string, read: (database: Queryable) => Promise<number>): void {
    this.databaseGauges([{ name, help }], async (database) => [await read(database)]);
  }

  /** Several database gauges from one read (one query per refresh), the i-th from its i-th number. */
  databaseGauges(
    gauges: ReadonlyArray<{ name: string; help: string }>,
    read: (database: Queryable) => Promise<readonly number[]>,
  ): void {
    const made = gauges.map(({ name, help }) => new Gauge({ name, help, registers: [this.registry] }));
    this.database.refreshGauges(made, read);
  }

  /**
   * A gauge read on every scrape, from memory only (a count the process keeps): a read that
   * queries the database belongs in `databaseGauge`. When reading fails it reports NaN.
   */
  gaugeOnScrape(name: string, help: string, read: () => Promise<number>): void {
    new Gauge({
      name,
      help,
      registers: [this.registry],
      async collect() {
        try {
          this.set(await read());
        } catch {
          this.set(Number.NaN);
        }
      },
    });
  }

  /** Consumer hook: a delivery was settled. */
  settled(settlement: Settlement<{ type: string }>): void {
    this.consumed.inc({ type: settlement.message?.type ?? 'unknown', outcome: settlement.outcome });
    if (settlement.deadLetterClass) this.deadLettered.inc({ reason: settlement.deadLetterClass });
  }

  /** Outbox relay hook: messages were published, each this many seconds after being written. */
  sent(lagSeconds: readonly number[]): void {
    for (const lag of lagSeconds) this.relayLag.observe(lag);
  }
}

import { Logger } from '@nestjs/common';
import type { Registry } from 'prom-client';
import { PeriodicTask } from '@shop/messaging';
import type { Queryable } from '@shop/service-kit';
import { changedCheckouts, TABLE_ROWS } from './checkouts-reader';
import type { SseHub } from './sse-hub';

/** One second of the order process, as the live view shows it. */
export interface LiveSample {
  at: string;
  decidedPerSecond: number;
  inFlight: number;
  admissionBound: number;
  shedPerSecond: number;
  timeoutsPerSecond: number;
  /** TIMEOUT decisions since this process started. */
  timeouts: number;
}

/** What the sampler reads of this process: its admission control's state. */
export interface AdmissionState {
  readonly inFlight: number;
  readonly limit: number;
}

/** The charts' window: this many seconds. */
export const HISTORY_SECONDS = 300;
const TICK_MS = 1_000;

/** A counter of the registry, read once: its samples (none when it is not registered). */
async function counterValues(registry: Registry, name: string) {
  const metric = registry.getSingleMetric(name);
  return metric ? (await metric.get()).values : [];
}

/** Sums `values`, those whose labels `where` accepts (all by default). */
const total = (
  values: ReadonlyArray<{ value: number; labels: Record<string, unknown> }>,
  where: (labels: Record<string, unknown>) => boolean = () => true,
): number => values.filter((value) => where(value.labels)).reduce((sum, value) => sum + value.value, 0);

/**
 * The console's one clock: every second it reads this process's own state (the protocol's and
 * admission's counters on the metrics registry, the admission bound) and, while a page is open,
 * the checkouts begun or decided since the last second (one query, whatever the number of
 * pages), and broadcasts both to every stream. Decided ids come from the decision listener's
 * announcements (`decided`).
 */
export class LiveSampler {
  private readonly task: PeriodicTask;
  private readonly samples: LiveSample[] = [];
  private readonly decidedIds = new Set<string>();
  private last: { decided: number; shed: number; timeouts: number; atMs: number } | undefined;
  private latestDeadline: Date | undefined;

  constructor(
    private readonly registry: Registry,
    private readonly admission: AdmissionState,
    private readonly db: Queryable,
    private readonly hub: SseHub,
  ) {
    this.task = new PeriodicTask('console sampler', TICK_MS, () => this.tick(), new Logger('Console'));
  }

  start(): void {
    this.task.start();
  }

  stop(): Promise<void> {
    return this.task.stop();
  }

  /** The samples of the last HISTORY_SECONDS, oldest first. */
  get history(): readonly LiveSample[] {
    return this.samples;
  }

  /** An order announced decided: its row goes out with the next tick (the latest TABLE_ROWS only). */
  decided(orderId: string): void {
    if (this.hub.size === 0) return;
    this.decidedIds.delete(orderId);
    this.decidedIds.add(orderId);
    if (this.decidedIds.size > TABLE_ROWS) this.decidedIds.delete(this.decidedIds.values().next().value!);
  }

  /** Announcements were lost: nothing to do, the table shows what the next ticks read. */
  resync(): void {}

  /** One second: a sample, broadcast; the checkouts that changed, broadcast (when someone watches). */
  async tick(nowMs = Date.now()): Promise<LiveSample> {
    const sample = await this.sample(nowMs);
    this.samples.push(sample);
    if (this.samples.length > HISTORY_SECONDS) this.samples.shift();
    this.hub.broadcast('metrics', sample);
    if (this.hub.size === 0) {
      this.latestDeadline = undefined; // a page opened later starts from its own table
      return sample;
    }
    const decided = [...this.decidedIds];
    this.decidedIds.clear();
    const { rows, latestDeadline } = await changedCheckouts(this.db, this.latestDeadline, decided);
    this.latestDeadline = latestDeadline ?? new Date(nowMs);
    for (const row of rows) this.hub.broadcast('checkout', row);
    return sample;
  }

  private async sample(nowMs: number): Promise<LiveSample> {
    const decisions = await counterValues(this.registry, 'checkout_decisions_total');
    const decided = total(decisions);
    const timeouts = total(decisions, (l) => l.reason === 'TIMEOUT');
    const shed = total(await counterValues(this.registry, 'checkout_admission_shed_total'));
    const last = this.last ?? { decided, shed, timeouts, atMs: nowMs - TICK_MS };
    const seconds = Math.max((nowMs - last.atMs) / 1000, 0.001);
    this.last = { decided, shed, timeouts, atMs: nowMs };
    const rate = (now: number, before: number) => Math.round(((now - before) / seconds) * 10) / 10;
    return {
      at: new Date(nowMs).toISOString(),
      decidedPerSecond: rate(decided, last.decided),
      inFlight: this.admission.inFlight,
      admissionBound: this.admission.limit,
      shedPerSecond: rate(shed, last.shed),
      timeoutsPerSecond: rate(timeouts, last.timeouts),
      timeouts,
    };
  }
}

import { Inject, Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { Counter } from 'prom-client';
import { DataSource } from 'typeorm';
import { PeriodicTask } from '@shop/messaging';
import { RetryLaterException, SERVICE_CONFIG, ServiceMetrics } from '@shop/service-kit';
import type { OrderConfig } from '../config';
import { DecisionListener, DecisionSubscriber } from './decision-listener';
import { UnknownDecisions } from './unknown-decisions';
import { WaitingLine } from './waiting-line';
import { MIN_WRITING, WriteBound } from './write-bound';

/** A slot taken for one new order: say what became of it. */
export interface AdmissionTicket {
  /** The order was written (its transaction committed): it holds the slot until it is decided. */
  accepted(orderId: string): void;
  /** Nothing new was written (refused input, an idempotent replay): the slot is free again. */
  cancel(): void;
}

/** How often the bound follows the decision rate, smoothed over ~2.5 s (decisions come in bursts: batches of votes). */
const TICK_MS = 250;
const RATE_SMOOTHING = 0.1;
const LATENCY_SMOOTHING = 0.25;
const RECONCILE_EVERY_MS = 1_000;

/**
 * Admission control for new orders: bounds the checkouts this process accepted and that are not
 * yet decided, so that overload is refused at the door (503 + Retry-After, nothing written)
 * instead of accepted and left to time out. A new order waits at most ADMISSION_WAIT_MS for a
 * slot, in a line that serves the newest first once it stands (WaitingLine).
 *
 * The bound is a concurrency limiter like TCP's slow start and back-off: it starts at
 * ADMISSION_INITIAL_IN_FLIGHT, a guess of the capacity (the floor would shed most of the first
 * burst after a start, which the system could have decided in time); each order decided within
 * the target while the bound was at least half used adds a slot (it doubles per round of
 * decisions); it never stays below what Little's law says is served, decisions per second × the
 * target decision time (a decision's time counts from the slot taken, the write included), and
 * falls to that when decisions are late; within ADMISSION_MIN/MAX_IN_FLIGHT.
 *
 * While it sheds, the door also bounds the orders being written at once (WriteBound), so the
 * queue is here, bounded in time, and not in the write (OrdersService.placeAll).
 *
 * An order's slot is freed when its decision is announced (by any replica), and checked against
 * the database for orders past their deadline and after the announcements were interrupted.
 * Times are taken on the monotonic clock (`performance.now()`): a wall clock set back or forward
 * would otherwise skew the Retry-After estimate and the staleness check.
 */
@Injectable()
export class AdmissionControl implements DecisionSubscriber, OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(AdmissionControl.name);
  /** Accepted orders not yet known to be decided: id → when accepted (ms, monotonic), whom to tell when decided. */
  private readonly accepted = new Map<string, { at: number; decided: () => void }>();
  private readonly decidedUnknown = new UnknownDecisions(); // forgotten past `staleAfterMs`
  private readonly writes: WriteBound;
  /** Slots taken by requests still writing their order: ticket number → when taken (ms), oldest first. */
  private readonly writing = new Map<number, number>();
  private tickets = 0;
  private readonly line: WaitingLine<number>; // requests waiting for a slot (a ticket number)
  private readonly targetMs: number;
  private readonly staleAfterMs: number;
  private bound: number;
  private guessUntil: number | undefined = Infinity; // the initial guess holds a target past the first decision
  private decidedSinceTick = 0;
  private decisionRate = 0;
  private decisionSeconds: number | undefined; // smoothed; none until one is measured
  private lastTick = performance.now();
  private readonly ticks: PeriodicTask;
  private unsubscribe: (() => void) | undefined;
  private reconciling = false;
  private behind = false; // decisions late at the last tick: the bound holds back overload, not a climb
  private lastReconcile = performance.now();
  private readonly shed: Counter;

  constructor(
    @Inject(SERVICE_CONFIG) private readonly config: OrderConfig,
    private readonly dataSource: DataSource,
    private readonly decisions: DecisionListener,
    metrics: ServiceMetrics,
  ) {
    this.targetMs = config.ADMISSION_TARGET_DECISION_MS ?? Math.round(config.PREPARE_TIMEOUT_MS / 5);
    // Past its deadline an order is aborted by the sweeper within a sweep or two.
    this.staleAfterMs = config.PREPARE_TIMEOUT_MS + 2 * config.SWEEP_INTERVAL_MS;
    this.bound = clamp(config.ADMISSION_INITIAL_IN_FLIGHT, config);
    this.line = new WaitingLine(config.ADMISSION_TARGET_WRITE_MS);
    this.writes = new WriteBound(config.ADMISSION_TARGET_WRITE_MS);
    this.ticks = new PeriodicTask('admission tick', TICK_MS, () => this.tick(), this.logger);
    metrics.gaugeOnScrape(
      'checkout_admission_in_flight',
      'Checkouts accepted by this process and not yet decided',
      () => Promise.resolve(this.inFlight),
    );
    metrics.gaugeOnScrape(
      'checkout_admission_limit',
      'The bound on checkouts in flight (climbs while decisions are within target, else decision rate × target)',
      () => Promise.resolve(this.bound),
    );
    this.shed = new Counter({
      name: 'checkout_admission_shed_total',
      help: 'New orders refused at the door (503 + Retry-After) because too many checkouts were undecided',
      registers: [metrics.registry],
    });
  }

  onApplicationBootstrap(): void {
    this.unsubscribe = this.decisions.subscribe(this);
    this.ticks.start();
  }

  async onModuleDestroy(): Promise<void> {
    this.unsubscribe?.();
    this.line.close();
    await this.ticks.stop();
  }

  get inFlight(): number {
    return this.accepted.size + this.writing.size;
  }

  get limit(): number {
    return this.bound;
  }

  /** The bound on orders being written at once (Infinity unless shedding). */
  get writeLimit(): number {
    return this.writes.limit;
  }

  /**
   * Takes a slot for a new order, waiting at most ADMISSION_WAIT_MS; else throws a 503. `decided`
   * is called when the accepted order's slot is freed by its decision: the customer's own slot
   * (CustomerLimits) follows this one, its announcements and its reconciliation.
   */
  async admit(decided: () => void = () => undefined): Promise<AdmissionTicket> {
    this.refuseIfLineFull();
    this.refuseLateWaiters();
    const ticket =
      this.hasRoom && this.line.length === 0 ? this.reserve() : await this.line.wait(this.config.ADMISSION_WAIT_MS);
    if (ticket === undefined) throw this.refusal();
    const admittedAt = this.writing.get(ticket)!;
    // Settled once: the first of accepted() and cancel() frees the write's slot.
    return {
      accepted: (orderId) => {
        if (!this.writing.delete(ticket)) return;
        this.writes.written();
        if (this.decidedUnknown.take(orderId)) {
          // Decided before it was known to be ours: the slot is free at once; when it was
          // accepted is not known, so it gives no decision-time sample.
          this.decidedSinceTick += 1;
          this.handOver();
          decided();
        } else {
          this.accepted.set(orderId, { at: admittedAt, decided }); // the write's wait counts too
          this.handOver(); // a write slot is free
        }
      },
      cancel: () => {
        if (!this.writing.delete(ticket)) return;
        this.writes.written();
        this.handOver();
      },
    };
  }

  /**
   * Refuses a new order at once when the line is full: the checkouts in flight fill their bound,
   * decisions are late, and more wait than decisions free in the write target, so one more could
   * only wait to be refused. Answered at once, its refusal costs little and holds nothing.
   */
  private refuseIfLineFull(): void {
    const freedInTarget = (this.decisionRate * this.config.ADMISSION_TARGET_WRITE_MS) / 1000;
    if (this.isFullAndBehind && this.line.length >= Math.max(MIN_WRITING, freedInTarget)) throw this.refusal();
  }

  private refusal(): RetryLaterException {
    this.shed.inc();
    this.writes.shed();
    return new RetryLaterException(
      `too many checkouts in progress (${this.inFlight}); retry with the same Idempotency-Key`,
      this.retryAfterSeconds,
    );
  }

  decided(orderId: string): void {
    const accepted = this.accepted.get(orderId);
    if (accepted !== undefined) this.release(orderId, accepted);
    else this.decidedUnknown.remember(orderId); // another replica's order, or ours not accepted yet
  }

  resync(): void {
    void this.reconcile([...this.accepted.keys()]);
  }

  private reserve(): number {
    const ticket = this.tickets++;
    this.writing.set(ticket, performance.now());
    return ticket;
  }

  /**
   * While the bound on checkouts in flight is full and decisions are late, the line waits for
   * decisions, not writes: a request that has waited past the write target would be answered late
   * and decided late, so it is refused now (controlled delay) and the slots go to those just come.
   * A burst held back by the write bound (a cold start's) or by the climb waits its turn.
   */
  private refuseLateWaiters(): void {
    if (this.isFullAndBehind) this.line.refuseOlderThan(this.config.ADMISSION_TARGET_WRITE_MS);
  }

  /** Gives free slots to the requests waiting for one (each taken here). */
  private handOver(): void {
    const take = () => this.reserve();
    this.line.serve(() => this.hasRoom, take);
  }

  private release(orderId: string, accepted: { at: number; decided: () => void }): void {
    const tookMs = performance.now() - accepted.at;
    // Decided in time while the bound was well used: one more would be served in time too.
    if (tookMs <= this.targetMs && 2 * this.inFlight >= this.bound) this.bound = clamp(this.bound + 1, this.config);
    this.accepted.delete(orderId);
    this.decidedSinceTick += 1;
    const last = this.decisionSeconds ?? tookMs / 1000;
    this.decisionSeconds = last + LATENCY_SMOOTHING * (tookMs / 1000 - last);
    this.handOver();
    accepted.decided();
  }

  /** The checkouts in flight fill the bound and decisions are late: overload, not a climb to capacity. */
  private get isFullAndBehind(): boolean {
    return this.behind && this.inFlight >= this.bound;
  }

  private get hasRoom(): boolean {
    return this.inFlight < this.bound && this.writing.size < this.writes.limit;
  }

  /** About how long until a retry finds a slot (seconds): the time an order now takes to be decided. */
  get retryAfterSeconds(): number {
    return Math.min(30, Math.max(1, Math.ceil(this.decisionSeconds ?? 1)));
  }

  private tick(): void {
    const now = performance.now();
    const sample = (this.decidedSinceTick * 1000) / (now - this.lastTick);
    this.writes.tick(now - this.lastTick, this.writing.size);
    this.lastTick = now;
    this.decidedSinceTick = 0;
    // Fewer decisions while the bound holds nothing back is a lull in demand, not less capacity: the
    // estimate falls only while orders wait at the bound (a burst after a quiet spell is not shed).
    const saturated = this.inFlight >= this.bound || this.line.length > 0;
    const weight = this.decisionRate === 0 ? 1 : RATE_SMOOTHING; // the first decisions replace the 0 of boot
    if (sample > this.decisionRate || saturated) this.decisionRate += weight * (sample - this.decisionRate);
    // Late: decisions took longer than the target, or one undecided (or unwritten) already has; before
    // the first decision, twice the target: a cold process's first writes are slow (warm-up, not overload).
    const patience = this.decisionSeconds === undefined ? 2 * this.targetMs : this.targetMs;
    const oldest = Math.min(this.accepted.values().next().value?.at ?? now, this.writing.values().next().value ?? now);
    const late = (this.decisionSeconds ?? 0) * 1000 > this.targetMs || now - oldest > patience;
    this.behind = late;
    const served = Math.round((this.decisionRate * this.targetMs) / 1000);
    if (this.decisionSeconds !== undefined && this.guessUntil === Infinity) this.guessUntil = now + this.targetMs;
    if (this.guessUntil !== undefined && now >= this.guessUntil) {
      // The guess's unused part goes; kept: what is served, what is used (the climb's 2 × in flight).
      this.bound = Math.min(this.bound, Math.max(served, 2 * this.inFlight));
      this.guessUntil = undefined;
    }
    this.bound = clamp(late ? served : Math.max(this.bound, served), this.config);
    this.refuseLateWaiters();
    this.handOver();
    const stale = now - this.staleAfterMs;
    this.decidedUnknown.forgetBefore(stale);
    if (now - this.lastReconcile >= RECONCILE_EVERY_MS) {
      const overdue = [...this.accepted].filter(([, { at }]) => at < stale).map(([id]) => id);
      if (overdue.length > 0) void this.reconcile(overdue);
    }
  }

  /** Frees the slots of orders the database says are decided (announcements missed or late). */
  private async reconcile(orderIds: string[]): Promise<void> {
    if (orderIds.length === 0 || this.reconciling) return;
    this.reconciling = true;
    this.lastReconcile = performance.now();
    try {
      const decided = await this.dataSource.query<Array<{ id: string }>>(
        `SELECT id FROM orders WHERE id = ANY($1::uuid[]) AND status <> 'PENDING'`,
        [orderIds.slice(0, 10_000)],
      );
      for (const { id } of decided) this.decided(id);
    } catch (err) {
      this.logger.warn(`could not check undecided orders: ${String(err)}`);
    } finally {
      this.reconciling = false;
    }
  }
}

const clamp = (bound: number, config: OrderConfig) =>
  Math.min(config.ADMISSION_MAX_IN_FLIGHT, Math.max(config.ADMISSION_MIN_IN_FLIGHT, bound));

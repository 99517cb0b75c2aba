import { Controller } from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import { CheckoutBatchPattern, CheckoutContext } from '@shop/checkout-transport';
import { CheckoutMessage, MessageOfType, Participant, PrepareRequest, type TraceContext } from '@shop/contracts';
import { Inbox } from '@shop/inbox';
import { backoffMs, currentLogContext, Logger, PoisonMessageError, withLogContext } from '@shop/messaging';
import type { Transactions, UnitOfWork } from '@shop/outbox';
import { AckRoundTrip } from './ack-round-trip';
import { Decided, Effect, needsAcks, onAck, onDeadline, onInquiry, onVote, Recorded } from './coordinator-rules';
import { decisionMessage, prepareMessage, prepareStages } from './coordinator-messages';
import { CoordinatorChanges, insertCheckouts, lockCheckouts, noChanges, writeChanges } from './coordinator-store';
import { completeAborted, scheduleResends, takeExpired, takeUnacked } from './coordinator-sweep-store';
import type { DecisionTaken, ProtocolObserver } from './observer';
import { send } from './outgoing';

export { TIMEOUT, type Decided } from './coordinator-rules';
export { prepareStages } from './coordinator-messages';

/** What each participant is asked to prepare, keyed by participant (the kit adds deadline and name). */
export type PrepareRequests<P extends Participant = Participant> = { [Q in P]: PrepareRequest<Q> };

export interface CoordinatorHooks {
  /**
   * Called in the deciding unit of work, before it commits, with the checkouts it decided (each
   * exactly once, a batch's together): apply the outcomes to the domain (e.g. the orders' status).
   */
  onDecided(unit: UnitOfWork<unknown>, decisions: readonly Decided[]): Promise<void>;
}

export interface CoordinatorOptions<P extends Participant = Participant> {
  /** Who takes part in every checkout: asked to prepare, told the decision (a service passes PARTICIPANTS). */
  participants: readonly P[];
  /**
   * Who is asked first, in stages: each stage's prepares go out once every participant of the
   * stages before it said yes (money before stock: an order that cannot be paid never holds
   * stock); the participants no stage names are the last stage. Default: all at once.
   */
  stages?: ReadonlyArray<readonly P[]>;
  /** Opens the coordinator's own units of work (the sweeps) on its database. */
  transactions: Transactions;
  hooks: CoordinatorHooks;
  logger: Logger;
  /** First re-send of an unacked decision after this; doubles up to the cap, with jitter. */
  resendBaseMs?: number;
  resendCapMs?: number;
  /** The acks' round trip, which re-sends wait for beyond their backoff (default: bounded by the cap). */
  ackRoundTrip?: AckRoundTrip;
  observer?: ProtocolObserver;
}

export type CoordinatorMessage = MessageOfType<'vote' | 'ack' | 'inquiry'>;

/** A checkout to begin: its id (the order's), its participants' time to vote, what each is asked. */
export interface NewTransaction<P extends Participant = Participant> {
  id: string;
  timeoutMs: number;
  requests: PrepareRequests<P>;
  /** The trace the checkout continues (its request's), when it is not the active one. */
  traceContext?: TraceContext;
}

const NONE: Recorded = { state: 'NONE' };

/**
 * The coordinator side of presumed-abort two-phase commit. A batch of messages runs in one unit
 * of work: recorded in the inbox, its checkouts locked, each message applied by the table
 * (coordinator-rules.ts), the changes written together (coordinator-store.ts) with the messages
 * they send (outbox).
 */
export class Coordinator<P extends Participant = Participant> {
  private readonly inbox: Inbox;
  private readonly resend: { baseMs: number; capMs: number };
  private readonly ackRoundTrip: AckRoundTrip;
  /** The participants in the order they are asked: stage by stage, each stage sorted. */
  private readonly stages: ReadonlyArray<readonly P[]>;

  constructor(private readonly options: CoordinatorOptions<P>) {
    this.stages = prepareStages(options.participants, options.stages ?? []);
    this.inbox = new Inbox(options.transactions.dataSource, 'coordinator');
    this.resend = { baseMs: options.resendBaseMs ?? 1_000, capMs: options.resendCapMs ?? 60_000 };
    this.ackRoundTrip = options.ackRoundTrip ?? new AckRoundTrip(this.resend.capMs / 1000);
  }

  /**
   * In `unit`: records the checkout and sends one prepare per participant (carrying the caller's
   * trace context, so the whole checkout is one trace). The deadline is `timeoutMs` after now by
   * the database's clock, and each prepare's `sentAt` is that clock's now, so a participant with
   * another clock can tell the two apart (participant-rules.ts, `coordinatorNow`). Answers the deadline.
   */
  async begin(unit: UnitOfWork<unknown>, transaction: NewTransaction<P>): Promise<Date> {
    const [deadline] = await this.beginAll(unit, [transaction]);
    return deadline;
  }

  /**
   * `begin` for many checkouts at once, in one statement (requests that share a transaction:
   * RequestDatabase.groupCommit). Each prepare carries its own checkout's trace context when
   * given, else the active one. Answers the deadlines, in order.
   */
  async beginAll(unit: UnitOfWork<unknown>, transactions: ReadonlyArray<NewTransaction<P>>): Promise<Date[]> {
    const [first, ...later] = this.stages;
    const recorded = await insertCheckouts(
      unit,
      transactions.map(({ id, timeoutMs, requests }) => ({
        id,
        timeoutMs,
        held: later.flatMap((stage, index) =>
          stage.map((participant) => ({ participant, stage: index + 1, request: requests[participant] })),
        ),
      })),
      first,
    );
    send(
      unit,
      transactions.flatMap(({ id, requests, traceContext }, index) =>
        first.map((participant) => ({
          ...prepareMessage(id, participant, requests[participant], recorded[index].deadline, recorded[index].now),
          ...(traceContext ? { traceContext } : {}),
        })),
      ),
    );
    return recorded.map((row) => row.deadline);
  }

  /**
   * Handles a batch of votes, acks and inquiries in `unit` (its transaction), in the order given
   * (the transport keeps each checkout's messages in delivery order). A message that fails fails
   * its own step (`unit.step`): the batch runs again without it.
   */
  async handle(unit: UnitOfWork<CheckoutMessage>, messages: readonly CoordinatorMessage[]): Promise<void> {
    const firstTime = await this.inbox.record(
      unit,
      messages.map((message) => message.messageId),
    );
    const fresh: CoordinatorMessage[] = [];
    for (const message of messages) {
      // A message handled before, or listed twice in this batch, is handled once.
      if (firstTime.delete(message.messageId)) fresh.push(message);
      else unit.afterCommit(() => this.options.observer?.duplicate?.(message.type));
    }
    if (fresh.length === 0) return;

    const recorded = await lockCheckouts(
      unit,
      fresh.map((message) => message.transactionId),
    );
    const changes = noChanges();
    for (const message of fresh) {
      await unit.step(message, async () => {
        const { transactionId, sender } = message;
        const before = recorded.get(transactionId) ?? NONE;
        const effect =
          message.type === 'vote'
            ? onVote(before, sender, message.payload)
            : message.type === 'ack'
              ? onAck(before, sender, message.payload.outcome)
              : onInquiry(before);
        if (effect.poison) throw new PoisonMessageError(`${effect.poison}: ${transactionId}`);
        recorded.set(transactionId, effect.next); // the batch's later messages see it
        this.apply(unit, changes, { transactionId, sender, causationId: message.messageId }, effect);
      });
    }
    await this.write(unit, changes);
  }

  /** Aborts undecided checkouts whose prepare deadline passed (TIMEOUT). Safe in several replicas. */
  async abortExpired(limit = 100): Promise<number> {
    return this.options.transactions.run(async (unit) => {
      const recorded = await lockCheckouts(unit, await takeExpired(unit, limit));
      const changes = noChanges();
      for (const [transactionId, checkout] of recorded) {
        this.apply(unit, changes, { transactionId, sender: null, causationId: null }, onDeadline(checkout));
      }
      await this.write(unit, changes);
      if (changes.decisions.length) {
        this.options.logger.warn(`aborted ${changes.decisions.length} transaction(s) past their prepare deadline`);
      }
      return changes.decisions.length;
    });
  }

  /**
   * Re-sends commits not acked in time: after a capped, jittered backoff plus the time acks now
   * take to come back (so not while they merely queue behind a backlog). An abort due is never
   * re-sent: it needs no acks (`needsAcks`); an older coordinator left it waiting, and it is
   * completed instead. Safe in several replicas.
   */
  async resendUnacked(limit = 100): Promise<number> {
    return this.options.transactions.run(async (unit) => {
      const taken = await takeUnacked(unit, limit, this.ackRoundTrip.timeoutSeconds);
      const due = taken.filter((row) => needsAcks(row.outcome));
      const completed = await completeAborted(
        unit,
        taken.filter((row) => !needsAcks(row.outcome)).map((row) => row.transactionId),
      );
      if (completed) this.options.logger.log(`completed ${completed} aborted transaction(s) left waiting for acks`);
      send(
        unit,
        due.map((row) => decisionMessage(row.transactionId, row.participant, row.outcome, row.reason, null)),
      );
      await scheduleResends(unit, due, (resends) => backoffMs(resends, this.resend));
      if (due.length) this.options.logger.warn(`re-sent ${due.length} unacknowledged decision(s)`);
      return due.length;
    });
  }

  /** What a message's effect sends now, and what it leaves to write with the batch. */
  private apply(
    unit: UnitOfWork<unknown>,
    changes: CoordinatorChanges,
    {
      transactionId,
      sender,
      causationId,
    }: { transactionId: string; sender: string | null; causationId: string | null },
    effect: Effect,
  ): void {
    if (effect.recordVote && sender)
      changes.votes.push({ transactionId, participant: sender, vote: effect.recordVote });
    if (effect.recordAck && sender) changes.acks.push({ transactionId, participant: sender, ...effect.recordAck });
    for (const participant of effect.ask ?? []) changes.asks.push({ transactionId, participant });
    if (effect.tell && sender) {
      send(unit, [decisionMessage(transactionId, sender, effect.tell.outcome, effect.tell.reason, causationId)]);
    }
    if (effect.decide) {
      const { outcome, reason } = effect.decide;
      changes.decisions.push({ transactionId, outcome, reason });
      send(
        unit,
        (effect.inform ?? []).map((participant) =>
          decisionMessage(transactionId, participant, outcome, reason, causationId),
        ),
      );
    }
  }

  /**
   * Writes the batch's changes, lets the domain apply its decisions (the hook), and, once it
   * committed, reports them and feeds the acks' round trips to the re-send timer.
   */
  private async write(unit: UnitOfWork<unknown>, changes: CoordinatorChanges): Promise<void> {
    const { released, latencySeconds, ackSamples } = await writeChanges(unit, changes, () => backoffMs(0, this.resend));
    send(
      unit,
      released.map((held) =>
        prepareMessage(
          held.transactionId,
          held.participant as P,
          held.request as PrepareRequest<P>,
          held.deadline,
          held.now,
        ),
      ),
    );
    if (changes.decisions.length > 0) await this.options.hooks.onDecided(unit, changes.decisions);
    unit.afterCommit(() => {
      for (const decision of changes.decisions) {
        this.decided({ ...decision, latencySeconds: latencySeconds.get(decision.transactionId) ?? 0 });
      }
      for (const sample of ackSamples.values()) if (sample.resends === 0) this.ackRoundTrip.observe(sample.seconds);
    });
  }

  /** Once the deciding transaction committed: a log line about the checkout, and the observer. */
  private decided(decision: DecisionTaken): void {
    withLogContext({ ...currentLogContext(), transactionId: decision.transactionId }, () =>
      this.options.logger.log(`decided ${decision.outcome}${decision.reason ? ` (${decision.reason})` : ''}`),
    );
    this.options.observer?.decided?.(decision);
  }
}

/** The Nest handler of the coordinator's checkout messages: each batch, in its unit of work (the transport's). */
@Controller()
export class CoordinatorMessages {
  constructor(private readonly coordinator: Coordinator) {}

  @CheckoutBatchPattern('vote', 'ack', 'inquiry')
  handle(@Payload() messages: readonly CoordinatorMessage[], @Ctx() context: CheckoutContext): Promise<void> {
    return this.coordinator.handle(context.getUnitOfWork(), messages);
  }
}

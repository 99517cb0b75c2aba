import { Controller } from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import { CheckoutBatchPattern, CheckoutContext } from '@shop/checkout-transport';
import {
  Ack,
  CheckoutMessage,
  COORDINATOR,
  createMessage,
  Inquiry,
  MessageOfType,
  Participant as ParticipantName,
  PreparePayload,
  Vote,
  VoteOf,
} from '@shop/contracts';
import { Inbox } from '@shop/inbox';
import { Logger, PoisonMessageError } from '@shop/messaging';
import type { Transactions, UnitOfWork } from '@shop/outbox';
import type { ProtocolObserver } from './observer';
import { send } from './outgoing';
import {
  Change,
  CoordinatorClock,
  coordinatorNow,
  merge,
  NO_CLOCK_SAMPLES,
  observeSent,
  onDecision,
  onPrepare,
  Recorded,
  Transition,
  voted,
} from './participant-rules';
import { lockTransactions, takeInDoubt, writeStates } from './participant-store';

/** What participant P is asked to prepare: its own request's fields, with the deadline. */
export type PrepareRequestOf<P extends ParticipantName> = Extract<PreparePayload, { participant: P }>;

/**
 * What a participant app supplies: its own prepare / commit / abort against its own tables, each
 * run in the kit's unit of work (read and write with `unit.manager`; send with `unit.send`).
 * `prepare` returns its vote; when it votes no, everything it wrote and sent is rolled back for
 * it, so it may stop half-way.
 */
export interface ParticipantResource<P extends ParticipantName> {
  prepare(unit: UnitOfWork<unknown>, transactionId: string, request: PrepareRequestOf<P>): Promise<VoteOf<P>>;
  /** Makes the prepared work permanent (reserved → sold, held → captured). */
  commit(unit: UnitOfWork<unknown>, transactionId: string): Promise<void>;
  /** Releases the prepared work. */
  abort(unit: UnitOfWork<unknown>, transactionId: string): Promise<void>;
  /**
   * Locks every row of the resource's own that a batch may touch (SKUs, accounts), in one fixed
   * order, before any message of it is handled: `prepares` will be prepared, the checkouts in
   * `decided` may be committed or aborted. Called when a batch has more than one of these; one
   * call alone must lock what it touches in that same order itself. Without it, two batches
   * that touch the same rows in opposite orders deadlock (one of them is rolled back and re-run).
   */
  lock?(unit: UnitOfWork<unknown>, batch: ResourceBatch<P>): Promise<void>;
  /**
   * Set when `prepare` writes nothing whenever it votes no (say, one statement that changes rows
   * only if every line fits): the kit then runs it without a savepoint, two statements and a
   * subtransaction less per prepare. Unset, the kit rolls back whatever a refusing prepare wrote.
   */
  readonly refusesWithoutWriting?: boolean;
}

/** A batch as `ParticipantResource.lock` sees it. */
export interface ResourceBatch<P extends ParticipantName> {
  prepares: ReadonlyArray<{ transactionId: string; request: PrepareRequestOf<P> }>;
  decided: readonly string[];
}

export interface ParticipantOptions<P extends ParticipantName> {
  name: P;
  resource: ParticipantResource<P>;
  /** Opens the units of work of its own (`inquireInDoubt`) on the participant's database. */
  transactions: Transactions;
  logger: Logger;
  observer?: ProtocolObserver;
}

export type ParticipantMessage = MessageOfType<'prepare' | 'decision'>;

/**
 * The participant side of presumed-abort two-phase commit. A batch of messages (one message
 * alone is a batch of one) is handled in one unit of work: the inbox record, the checkouts'
 * rows locked, the resource's rows locked, each message by the rules (participant-rules.ts)
 * with the resource's work and its reply sent, then the new states written. Idempotent by
 * message id (inbox) and by state (a re-sent prepare or decision gets the same answer and
 * changes nothing).
 */
export class Participant<P extends ParticipantName> {
  private readonly inbox: Inbox;
  /** The coordinator's clock as the prepares of this participant's committed batches show it (`observeSent`). */
  private clock: CoordinatorClock = NO_CLOCK_SAMPLES;

  constructor(private readonly options: ParticipantOptions<P>) {
    this.inbox = new Inbox(options.transactions.dataSource, `${options.name}.participant`);
  }

  /**
   * Handles a batch of prepares and decisions in `unit` (its transaction), in the order given:
   * the transport sorts a batch by transaction id, keeping each checkout's messages in delivery
   * order. A message that fails fails its own step (`unit.step`): the batch runs again without it.
   */
  async handle(unit: UnitOfWork<CheckoutMessage>, messages: ReadonlyArray<ParticipantMessage>): Promise<void> {
    const firstTime = await this.inbox.record(
      unit,
      messages.map((message) => message.messageId),
    );
    const fresh: ParticipantMessage[] = [];
    for (const message of messages) {
      // A message handled before, or listed twice in this batch, is handled once.
      if (firstTime.delete(message.messageId)) fresh.push(message);
      else unit.afterCommit(() => this.options.observer?.duplicate?.(message.type));
    }
    if (fresh.length === 0) return;

    const { recorded, databaseNowMs } = await lockTransactions(
      unit,
      fresh.map((message) => message.transactionId),
    );
    await this.lockResources(unit, fresh, recorded);

    // Each prepare is judged by the clock as it and the messages before it show it, as it would
    // be alone (not by a prompter one later in the batch); what a batch saw counts once it committed.
    let clock = this.clock;
    const sent: number[] = [];
    const changes = new Map<string, Change>();
    for (const message of fresh) {
      if (message.type === 'prepare') {
        const sentAtMs = Date.parse(message.sentAt);
        sent.push(sentAtMs);
        clock = observeSent(clock, databaseNowMs, sentAtMs);
      }
      const coordinatorNowMs = coordinatorNow(clock, databaseNowMs);
      await unit.step(message, async () => {
        const { next, reply, change } = await this.apply(
          unit,
          message,
          recorded.get(message.transactionId)!,
          coordinatorNowMs,
        );
        recorded.set(message.transactionId, next); // the batch's later messages see it
        if (change) changes.set(message.transactionId, merge(changes.get(message.transactionId), change));
        if (reply) send(unit, [this.replyTo(message, reply)]);
      });
    }
    await writeStates(unit, changes);
    unit.afterCommit(() => {
      for (const sentAtMs of sent) this.clock = observeSent(this.clock, databaseNowMs, sentAtMs);
    });
  }

  /**
   * Asks the coordinator about transactions held PREPARED longer than `olderThanMs`, at most once
   * per `everyMs` each. Safe in several replicas.
   */
  async inquireInDoubt(olderThanMs: number, everyMs: number, limit = 100): Promise<number> {
    return this.options.transactions.run(async (unit) => {
      const inDoubt = await takeInDoubt(unit, olderThanMs, everyMs, limit);
      if (inDoubt.length === 0) return 0;
      send(
        unit,
        inDoubt.map(({ transactionId, preparedAt }) =>
          createMessage(Inquiry, {
            transactionId,
            sender: this.options.name,
            recipient: COORDINATOR,
            payload: { preparedAt: preparedAt.toISOString() },
          }),
        ),
      );
      this.options.logger.warn(`asked the coordinator about ${inDoubt.length} in-doubt transaction(s)`);
      return inDoubt.length;
    });
  }

  /** One message by the rules, the resource doing what they ask of it. */
  private async apply(
    unit: UnitOfWork<CheckoutMessage>,
    message: ParticipantMessage,
    recorded: Recorded,
    coordinatorNowMs: number,
  ): Promise<Transition> {
    const { resource, name } = this.options;
    const { transactionId } = message;
    if (message.type === 'prepare' && message.payload.participant !== name) {
      throw new PoisonMessageError(`prepare for ${message.payload.participant} delivered to ${name}`);
    }
    const verdict =
      message.type === 'prepare'
        ? onPrepare(recorded, Date.parse(message.payload.deadline), coordinatorNowMs)
        : onDecision(recorded, message.payload.outcome);
    switch (verdict.do) {
      case 'poison':
        throw new PoisonMessageError(`${verdict.problem}: ${transactionId} in ${name}`);
      case 'prepare':
        return voted(await this.prepare(unit, transactionId, message.payload as PrepareRequestOf<P>));
      case 'commit':
        await resource.commit(unit, transactionId);
        return verdict;
      case 'abort':
        await resource.abort(unit, transactionId);
        return verdict;
      case 'reply':
        return verdict;
    }
  }

  /** The resource's vote; a "no" takes back whatever it wrote and sent (unless it writes nothing then). */
  private prepare(unit: UnitOfWork<unknown>, transactionId: string, request: PrepareRequestOf<P>): Promise<VoteOf<P>> {
    const { resource } = this.options;
    if (resource.refusesWithoutWriting) return resource.prepare(unit, transactionId, request);
    return unit.savepoint(
      () => resource.prepare(unit, transactionId, request),
      (vote) => vote.vote === 'yes',
    );
  }

  /**
   * Has the resource lock the rows the batch may touch: the prepares of checkouts new here, and
   * the decisions of checkouts new or prepared here (the only ones the rules put to it).
   */
  private async lockResources(
    unit: UnitOfWork<unknown>,
    messages: readonly ParticipantMessage[],
    recorded: ReadonlyMap<string, Recorded>,
  ): Promise<void> {
    const { resource, name } = this.options;
    if (!resource.lock) return;
    const stateOf = (message: ParticipantMessage) => recorded.get(message.transactionId)?.state;
    const prepares = messages
      .filter((message) => message.type === 'prepare' && stateOf(message) === 'NONE')
      .filter((message) => (message as MessageOfType<'prepare'>).payload.participant === name)
      .map((message) => ({ transactionId: message.transactionId, request: message.payload as PrepareRequestOf<P> }));
    const decided = [
      ...new Set(
        messages
          .filter((message) => message.type === 'decision' && ['NONE', 'PREPARED'].includes(stateOf(message)!))
          .map((message) => message.transactionId),
      ),
    ];
    // One call alone takes its rows in the resource's order by itself: no statement to spare.
    if (prepares.length + decided.length > 1) await resource.lock(unit, { prepares, decided });
  }

  private replyTo(message: ParticipantMessage, reply: NonNullable<Transition['reply']>): CheckoutMessage {
    const envelope = {
      transactionId: message.transactionId,
      sender: this.options.name,
      recipient: COORDINATOR,
      causationId: message.messageId,
    };
    return reply.type === 'vote'
      ? createMessage(Vote, { ...envelope, payload: reply.payload })
      : createMessage(Ack, { ...envelope, payload: reply.payload });
  }
}

/** The Nest handler of a participant's checkout messages: each batch, in its unit of work (the transport's). */
@Controller()
export class ParticipantMessages {
  constructor(private readonly participant: Participant<ParticipantName>) {}

  @CheckoutBatchPattern('prepare', 'decision')
  handle(@Payload() messages: readonly ParticipantMessage[], @Ctx() context: CheckoutContext): Promise<void> {
    return this.participant.handle(context.getUnitOfWork(), messages);
  }
}

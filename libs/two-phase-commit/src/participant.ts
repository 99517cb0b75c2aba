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
  Vote,
  VoteOf,
} from '@shop/contracts';
import { Inbox } from '@shop/inbox';
import { Logger, PoisonMessageError } from '@shop/messaging';
import type { Transactions, UnitOfWork } from '@shop/outbox';
import type { ProtocolObserver } from './observer';
import type { ParticipantResource, PrepareRequestOf } from './participant-resource';
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
  Verdict,
  voted,
} from './participant-rules';
import { lockTransactions, takeInDoubt, writeStates } from './participant-store';

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
 * rows locked, the resource's rows locked, each message judged by the rules
 * (participant-rules.ts), the resource's work done a set at a time and each reply sent, then
 * the new states written. Idempotent by
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
   * order. A message that fails fails its own step (`unit.step`): the batch runs again without
   * it. When the resource's work for a set fails, which message it was is unknown: the batch's
   * messages then run each alone (`Transactions.runBatch`), and the one that fails fails alone.
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
    const coordinatorNowMs = fresh.map((message) => {
      if (message.type === 'prepare') {
        const sentAtMs = Date.parse(message.sentAt);
        sent.push(sentAtMs);
        clock = observeSent(clock, databaseNowMs, sentAtMs);
      }
      return coordinatorNow(clock, databaseNowMs);
    });

    const changes = new Map<string, Change>();
    for (const round of roundsOf(fresh)) {
      // Each judged in its own step first: a poison message fails alone, before any work is done.
      const judged: Judged[] = [];
      for (const index of round) {
        const message = fresh[index];
        await unit.step(message, async () => {
          judged.push({
            message,
            verdict: this.judge(message, recorded.get(message.transactionId)!, coordinatorNowMs[index]),
          });
        });
      }
      const votes = await this.work(unit, judged);
      for (const { message, verdict } of judged) {
        const { next, reply, change } = verdict.do === 'prepare' ? voted(votes.get(message.transactionId)!) : verdict;
        recorded.set(message.transactionId, next); // the next round sees it
        if (change) changes.set(message.transactionId, merge(changes.get(message.transactionId), change));
        if (reply) send(unit, [this.replyTo(message, reply)]);
      }
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

  /** What the rules say to do with one message; a poison message throws. */
  private judge(message: ParticipantMessage, recorded: Recorded, coordinatorNowMs: number): Judged['verdict'] {
    const { name } = this.options;
    const { transactionId } = message;
    if (message.type === 'prepare' && message.payload.participant !== name) {
      throw new PoisonMessageError(`prepare for ${message.payload.participant} delivered to ${name}`);
    }
    const verdict =
      message.type === 'prepare'
        ? onPrepare(recorded, Date.parse(message.payload.deadline), coordinatorNowMs)
        : onDecision(recorded, message.payload.outcome);
    if (verdict.do === 'poison') throw new PoisonMessageError(`${verdict.problem}: ${transactionId} in ${name}`);
    return verdict;
  }

  /**
   * Has the resource do what a round's verdicts ask, one call for each kind of work: the aborts
   * and commits first (what they release, the prepares may take), then the prepares. Answers
   * each prepared checkout's vote.
   */
  private async work(unit: UnitOfWork<unknown>, judged: readonly Judged[]): Promise<Map<string, VoteOf<P>>> {
    const { resource, name } = this.options;
    const idsTo = (work: 'abort' | 'commit') =>
      judged.filter(({ verdict }) => verdict.do === work).map(({ message }) => message.transactionId);
    const [aborts, commits] = [idsTo('abort'), idsTo('commit')];
    if (aborts.length > 0) await resource.abort(unit, aborts);
    if (commits.length > 0) await resource.commit(unit, commits);
    const prepares = judged
      .filter(({ verdict }) => verdict.do === 'prepare')
      .map(({ message }) => ({
        transactionId: message.transactionId,
        request: message.payload as PrepareRequestOf<P>,
      }));
    if (prepares.length === 0) return new Map();
    const votes = await resource.prepare(unit, prepares);
    if (votes.length !== prepares.length) {
      throw new Error(`${name}'s prepare answered ${votes.length} votes for ${prepares.length} prepares`);
    }
    return new Map(prepares.map(({ transactionId }, i) => [transactionId, votes[i]]));
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

/** A message and what the rules say to do with it (never poison: that fails its step). */
interface Judged {
  message: ParticipantMessage;
  verdict: Exclude<Verdict, { do: 'poison' }>;
}

/**
 * The positions of `messages` in rounds: each checkout's first message in the first round, its
 * second in the second, and so on, each round in the batch's order. A round has each checkout
 * at most once, so its work can be asked of the resource set by set.
 */
function roundsOf(messages: readonly ParticipantMessage[]): number[][] {
  const rounds: number[][] = [];
  const seen = new Map<string, number>();
  messages.forEach((message, index) => {
    const round = seen.get(message.transactionId) ?? 0;
    seen.set(message.transactionId, round + 1);
    (rounds[round] ??= []).push(index);
  });
  return rounds;
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

import type { DataSource, EntityManager } from 'typeorm';
import {
  CheckoutMessage,
  COORDINATOR,
  createMessage,
  Decision,
  MessageOfType,
  Outcome,
  Participant,
  PreparePayload,
  Prepare,
  PrepareRequest,
} from '@shop/contracts';
import { Inbox } from '@shop/inbox';
import type { Transactions, UnitOfWork } from '@shop/outbox';
import { currentLogContext, Logger, PoisonMessageError, withLogContext } from '@shop/messaging';
import { z } from 'zod';
import type { DecisionTaken, ProtocolObserver } from './observer';
import { AckRoundTrip, backoffMs, send } from './outgoing';

/** What each participant is asked to prepare, keyed by participant (the kit adds deadline and name). */
export type PrepareRequests<P extends Participant = Participant> = { [Q in P]: PrepareRequest<Q> };

/** Why the coordinator aborted when no participant said no. */
export const TIMEOUT = 'TIMEOUT';

/** A decision as the domain applies it: `reason` is the first "no" vote's reason, or TIMEOUT (null for a commit). */
export interface Decided {
  transactionId: string;
  outcome: Outcome;
  reason: string | null;
}

export interface CoordinatorHooks {
  /**
   * Called inside the deciding transaction, before it commits, with the checkouts it decided
   * (each exactly once, a batch's together): apply the outcomes to the domain (e.g. the orders'
   * status).
   */
  onDecided(manager: EntityManager, decisions: readonly Decided[]): Promise<void>;
}

export interface CoordinatorOptions<P extends Participant = Participant> {
  /** Who takes part in every checkout: asked to prepare, told the decision (a service passes PARTICIPANTS). */
  participants: readonly P[];
  dataSource: DataSource;
  /** Opens the coordinator's own units of work (sweeps, a message handled alone). */
  transactions: Transactions;
  hooks: CoordinatorHooks;
  logger: Logger;
  /** First re-send of an unacked decision after this; doubles up to the cap, with jitter. */
  resendBaseMs?: number;
  resendCapMs?: number;
  observer?: ProtocolObserver;
}

export interface UnfinishedTransaction {
  id: string;
  stage: 'in-doubt' | 'unacknowledged';
  state: string;
  decisionReason: string | null;
  deadline: Date;
  createdAt: Date;
  decidedAt: Date | null;
  ageMs: number;
  participants: Array<{
    participant: string;
    vote: string | null;
    voteReason: string | null;
    acked: boolean;
    resends: number;
  }>;
}

interface TransactionRow {
  state: 'PREPARING' | 'COMMITTED' | 'ABORTED';
  decision_reason: string | null;
  /** Whether the prepare deadline has passed, by the database's clock. */
  expired: boolean;
}

type CoordinatorMessage = MessageOfType<'vote' | 'ack' | 'inquiry'>;

/** A unit of work as the coordinator is given it: a batch's transaction, with the batch's messages. */
export type CoordinatorUnit = UnitOfWork<CheckoutMessage>;

/** What one batch transaction read and recorded for all its messages at once (see `batchState`). */
interface BatchState {
  /** The batch's checkouts, locked; one missing was never begun here (presumed abort). */
  transactions: Map<string, TransactionRow>;
  /** Per checkout with votes in the batch: how many votes are still not "yes", counting the batch's. */
  votesPending: Map<string, number>;
  /** The acks the batch recorded (by checkout/participant): their round trips. */
  acked: Map<string, { seconds: number; resends: number }>;
  /** The ack messages recorded with the batch (the others' checkouts were decided in the batch). */
  acksRecorded: Set<string>;
  /** The messages this state was read for: a unit handles only its batch's. */
  messageIds: Set<string>;
  /** Decisions taken in the batch, written together before it commits (`writeDecisions`). */
  decisions: DecisionTaken[];
}

function isCoordinatorMessage(message: CheckoutMessage): message is CoordinatorMessage {
  return message.type === 'vote' || message.type === 'ack' || message.type === 'inquiry';
}

/** The decision a checkout has, if any. */
function outcomeOf(transaction: TransactionRow | undefined): Outcome | undefined {
  return transaction?.state === 'COMMITTED' ? 'commit' : transaction?.state === 'ABORTED' ? 'abort' : undefined;
}

const ackKey = (ack: MessageOfType<'ack'>) => `${ack.transactionId}/${ack.sender}`;

/**
 * The coordinator side of presumed-abort two-phase commit. Every step runs in one local
 * transaction with the transaction row locked: record the message in the inbox, change the
 * protocol state, write what must be sent to the outbox.
 */
export class Coordinator<P extends Participant = Participant> {
  private readonly inbox: Inbox;
  private readonly resendBaseMs: number;
  private readonly resendCapMs: number;
  private readonly ackRoundTrip = new AckRoundTrip();
  /** Per batch transaction (its manager): what the batch read and recorded (`batchState`). */
  private readonly batches = new WeakMap<EntityManager, Promise<BatchState>>();

  constructor(private readonly options: CoordinatorOptions<P>) {
    this.inbox = new Inbox(options.dataSource, 'coordinator');
    this.resendBaseMs = options.resendBaseMs ?? 1_000;
    this.resendCapMs = options.resendCapMs ?? 60_000;
  }

  /**
   * In the caller's transaction: records the transaction and writes one prepare per participant
   * (carrying the caller's trace context, so the whole checkout is one trace). The prepare
   * deadline is `timeoutMs` after now by the database's clock, the one it is compared with
   * (`abortExpired`, inquiries, participants): a process whose clock is off changes nothing.
   * Answers the deadline stamped.
   */
  async begin(
    unit: UnitOfWork<unknown>,
    transaction: { id: string; timeoutMs: number; requests: PrepareRequests<P> },
  ): Promise<Date> {
    const { manager } = unit;
    const { id, timeoutMs, requests } = transaction;
    const [{ deadline }] = await manager.query<Array<{ deadline: Date }>>(
      `WITH transaction AS (
         INSERT INTO tpc_transactions (id, state, deadline)
         VALUES ($1, 'PREPARING', now() + make_interval(secs => $2::double precision / 1000)) RETURNING deadline),
       participants AS (INSERT INTO tpc_participants (transaction_id, participant) SELECT $1, unnest($3::text[]))
       SELECT deadline FROM transaction`,
      [id, timeoutMs, this.options.participants],
    );
    send(
      unit,
      this.options.participants.map((participant) =>
        createMessage(Prepare, {
          transactionId: id,
          sender: COORDINATOR,
          recipient: participant,
          payload: { participant, deadline: deadline.toISOString(), ...requests[participant] } as z.input<
            typeof PreparePayload
          >,
        }),
      ),
    );
    return deadline;
  }

  /** A batch of votes, acks and inquiries in one unit of work (one message alone is a batch of one). */
  async handle(unit: CoordinatorUnit, messages: readonly CoordinatorMessage[]): Promise<void> {
    for (const message of messages) {
      await unit.step(message, () =>
        message.type === 'vote'
          ? this.onVote(message, unit)
          : message.type === 'ack'
            ? this.onAck(message, unit)
            : this.onInquiry(message, unit),
      );
    }
  }

  /** A vote: record it; the first "no" aborts, the last "yes" commits. */
  async onVote(vote: MessageOfType<'vote'>, unit?: CoordinatorUnit): Promise<void> {
    const participant = vote.sender as Participant;
    await this.handleOnce(vote, unit, async (own, batch) => {
      const transaction = batch.transactions.get(vote.transactionId);
      if (!transaction) {
        // Presumed abort: nothing is known of it, so it was never committed.
        if (vote.payload.vote === 'yes') this.sendDecision(own, vote, participant, 'abort', null);
        return;
      }
      // Late or repeated vote (a yes that crossed the abort, say): nothing to send. The decision
      // went to every participant when it was taken, and is re-sent until each acks it.
      if (transaction.state !== 'PREPARING') return;
      if (vote.payload.vote === 'no') {
        const decided = { transactionId: vote.transactionId, outcome: 'abort', reason: vote.payload.reason } as const;
        return this.decide(own, batch.decisions, decided, vote, transaction);
      }
      if (batch.votesPending.get(vote.transactionId) === 0) {
        const decided = { transactionId: vote.transactionId, outcome: 'commit', reason: null } as const;
        return this.decide(own, batch.decisions, decided, vote, transaction);
      }
    });
  }

  /** An ack: the participant applied the decision; when all have, the transaction is complete. */
  async onAck(ack: MessageOfType<'ack'>, unit?: CoordinatorUnit): Promise<void> {
    await this.handleOnce(ack, unit, async (own, batch) => {
      const transaction = batch.transactions.get(ack.transactionId);
      if (!transaction) return;
      if (ack.payload.outcome !== outcomeOf(transaction)) {
        // A participant applied something other than the decision: never record it as done.
        throw new PoisonMessageError(
          `${ack.sender} acked ${ack.payload.outcome} for ${ack.transactionId}, which is ${transaction.state}`,
        );
      }
      // Recorded with the batch's acks, unless its transaction was decided within this batch.
      const acked = batch.acksRecorded.has(ack.messageId) ? batch.acked : await this.recordAcks(own.manager, [ack]);
      const roundTrip = acked.get(ackKey(ack));
      acked.delete(ackKey(ack)); // a second ack from the same participant was not the one that counted
      if (roundTrip && roundTrip.resends === 0) this.ackRoundTrip.observe(roundTrip.seconds);
    });
  }

  /** A participant in doubt asks for the outcome; unknown means abort (presumed abort). */
  async onInquiry(inquiry: MessageOfType<'inquiry'>, unit?: CoordinatorUnit): Promise<void> {
    const participant = inquiry.sender as Participant;
    await this.handleOnce(inquiry, unit, async (own, batch) => {
      const transaction = batch.transactions.get(inquiry.transactionId);
      if (!transaction) return this.sendDecision(own, inquiry, participant, 'abort', null);
      if (transaction.state === 'PREPARING') {
        // Still collecting votes: only a passed deadline decides; otherwise it asks again later.
        if (transaction.expired) {
          const decided = { transactionId: inquiry.transactionId, outcome: 'abort', reason: TIMEOUT } as const;
          return this.decide(own, batch.decisions, decided, inquiry, transaction);
        }
        return;
      }
      this.sendDecision(own, inquiry, participant, outcomeOf(transaction)!, transaction.decision_reason);
    });
  }

  /** Aborts undecided transactions whose prepare deadline passed. Safe in several replicas. */
  async abortExpired(limit = 100): Promise<number> {
    const decisions = await this.options.transactions.run(async (unit) => {
      const { manager } = unit;
      const expired = await manager.query<Array<{ id: string }>>(
        `SELECT id FROM tpc_transactions WHERE state = 'PREPARING' AND deadline <= now()
          ORDER BY deadline LIMIT $1 FOR UPDATE SKIP LOCKED`,
        [limit],
      );
      const taken: DecisionTaken[] = [];
      for (const { id } of expired) {
        await this.decide(unit, taken, { transactionId: id, outcome: 'abort', reason: TIMEOUT }, null);
      }
      await this.writeDecisions(manager, taken);
      return taken;
    });
    decisions.forEach((decision) => this.decided(decision));
    return decisions.length;
  }

  /**
   * Re-sends decisions not acked in time: after a capped, jittered backoff plus the time acks now
   * take to come back (so not while they merely queue behind a backlog). Safe in several replicas.
   */
  async resendUnacked(limit = 100): Promise<number> {
    return this.options.transactions.run(async (unit) => {
      const { manager } = unit;
      const due = await manager.query<
        Array<{
          transaction_id: string;
          participant: Participant;
          resends: number;
          state: string;
          decision_reason: string | null;
        }>
      >(
        `SELECT p.transaction_id, p.participant, p.resends, t.state, t.decision_reason
           FROM tpc_participants p JOIN tpc_transactions t ON t.id = p.transaction_id
          WHERE p.acked_at IS NULL AND p.next_resend_at <= now() - make_interval(secs => $2)
          ORDER BY p.next_resend_at LIMIT $1 FOR UPDATE OF p SKIP LOCKED`,
        [limit, this.ackRoundTrip.timeoutSeconds],
      );
      for (const row of due) {
        const outcome: Outcome = row.state === 'COMMITTED' ? 'commit' : 'abort';
        send(unit, [
          createMessage(Decision, {
            transactionId: row.transaction_id,
            sender: COORDINATOR,
            recipient: row.participant,
            payload: { outcome, ...(row.decision_reason ? { reason: row.decision_reason } : {}) },
          }),
        ]);
        await manager.query(
          `UPDATE tpc_participants SET resends = resends + 1,
                  next_resend_at = now() + make_interval(secs => $3)
            WHERE transaction_id = $1 AND participant = $2`,
          [row.transaction_id, row.participant, backoffMs(row.resends + 1, this.resendBaseMs, this.resendCapMs) / 1000],
        );
      }
      if (due.length) this.options.logger.warn(`re-sent ${due.length} unacknowledged decision(s)`);
      return due.length;
    });
  }

  /**
   * Transactions not yet complete and older than `olderThanMs`: in doubt (still collecting votes)
   * or decided but not acknowledged by every participant. For the operator view.
   */
  async unfinished(olderThanMs: number, limit = 100): Promise<UnfinishedTransaction[]> {
    return this.options.dataSource.query<UnfinishedTransaction[]>(
      `SELECT t.id,
              CASE WHEN t.state = 'PREPARING' THEN 'in-doubt' ELSE 'unacknowledged' END AS stage,
              t.state, t.decision_reason AS "decisionReason", t.deadline, t.created_at AS "createdAt",
              t.decided_at AS "decidedAt", floor(extract(epoch FROM now() - t.created_at) * 1000)::bigint::int AS "ageMs",
              json_agg(json_build_object('participant', p.participant, 'vote', p.vote, 'voteReason', p.vote_reason,
                                         'acked', p.acked_at IS NOT NULL, 'resends', p.resends)
                       ORDER BY p.participant) AS participants
         FROM tpc_transactions t JOIN tpc_participants p ON p.transaction_id = t.id
        WHERE t.completed_at IS NULL AND t.created_at <= now() - make_interval(secs => $1)
        GROUP BY t.id ORDER BY t.created_at LIMIT $2`,
      [olderThanMs / 1000, limit],
    );
  }

  /** How many transactions are still collecting votes, and for how long the oldest has been (metrics). */
  async inDoubt(): Promise<{ count: number; oldestAgeSeconds: number }> {
    const [row] = await this.options.dataSource.query<Array<{ count: number; oldest: number | null }>>(
      `SELECT count(*)::int AS count, extract(epoch FROM now() - min(created_at))::float8 AS oldest
         FROM tpc_transactions WHERE state = 'PREPARING'`,
    );
    return { count: row.count, oldestAgeSeconds: row.oldest ?? 0 };
  }

  /**
   * Runs `work` once per message id (inbox) in the given unit of work (a batch's transaction), or in
   * a transaction of its own; reports, once committed, a duplicate or the decision it took.
   */
  private async handleOnce(
    message: CoordinatorMessage,
    unit: CoordinatorUnit | undefined,
    work: (unit: CoordinatorUnit, batch: BatchState) => Promise<DecisionTaken | void>,
  ): Promise<void> {
    if (!unit) {
      // A message handled alone is a batch of one.
      const [result] = await this.options.transactions.runBatch<CheckoutMessage>([message], (own) =>
        own.step(message, () => this.handleOnce(message, own, work)),
      );
      if (!result.ok) throw result.error;
      return;
    }
    if (!(await this.inbox.recordIn(unit, message.messageId))) {
      unit.afterCommit(() => this.options.observer?.duplicate?.(message.type));
      return;
    }
    const batch = await this.batchState(unit);
    if (!batch.messageIds.has(message.messageId))
      throw new Error(`message ${message.messageId} is not of this unit's batch`);
    const decision = await work(unit, batch);
    if (decision) unit.afterCommit(() => this.decided(decision));
  }

  /**
   * The unit's batch as the coordinator sees it, read once per batch transaction: its checkouts
   * locked (in id order, so batches never deadlock each other), its votes and its acks recorded,
   * each kind in one statement for the whole batch; its decisions are written before it commits.
   */
  private batchState(unit: CoordinatorUnit): Promise<BatchState> {
    let state = this.batches.get(unit.manager);
    if (!state) {
      const read = (state = this.readBatch(unit.manager, unit.items.filter(isCoordinatorMessage)));
      this.batches.set(unit.manager, state);
      unit.beforeCommit(async () => this.writeDecisions(unit.manager, (await read).decisions));
    }
    return state;
  }

  private async readBatch(manager: EntityManager, messages: readonly CoordinatorMessage[]): Promise<BatchState> {
    const rows = await manager.query<Array<TransactionRow & { id: string }>>(
      `SELECT id, state, decision_reason, deadline <= now() AS expired FROM tpc_transactions
        WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE`,
      [[...new Set(messages.map((message) => message.transactionId))]],
    );
    const transactions = new Map(rows.map(({ id, ...row }) => [id, row]));
    const votes = messages.filter(
      (message): message is MessageOfType<'vote'> => message.type === 'vote' && transactions.has(message.transactionId),
    );
    const acks = messages.filter(
      (message): message is MessageOfType<'ack'> =>
        message.type === 'ack' && message.payload.outcome === outcomeOf(transactions.get(message.transactionId)),
    );
    return {
      transactions,
      votesPending: votes.length ? await this.recordVotes(manager, votes) : new Map<string, number>(),
      acked: acks.length
        ? await this.recordAcks(manager, acks)
        : new Map<string, { seconds: number; resends: number }>(),
      acksRecorded: new Set(acks.map((ack) => ack.messageId)),
      messageIds: new Set(messages.map((message) => message.messageId)),
      decisions: [],
    };
  }

  /**
   * Records votes (a participant's first vote counts) and answers, for each of their checkouts,
   * how many votes are still not "yes". Their checkouts are locked: the votes committed before
   * this statement are all there is besides these.
   */
  private async recordVotes(
    manager: EntityManager,
    votes: ReadonlyArray<MessageOfType<'vote'>>,
  ): Promise<Map<string, number>> {
    const rows = await manager.query<Array<{ transaction_id: string; pending: number }>>(
      `WITH vote AS (
         SELECT DISTINCT ON (transaction_id, participant) transaction_id, participant, vote, reason
           FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY
                AS v(transaction_id, participant, vote, reason, position)
          ORDER BY transaction_id, participant, position),
       voted AS (
         UPDATE tpc_participants p SET vote = v.vote, vote_reason = v.reason, voted_at = now()
           FROM vote v
          WHERE p.transaction_id = v.transaction_id AND p.participant = v.participant AND p.vote IS NULL
         RETURNING p.transaction_id, p.participant, p.vote)
       SELECT p.transaction_id,
              count(*) FILTER (WHERE coalesce(v.vote, p.vote) IS DISTINCT FROM 'yes')::int AS pending
         FROM tpc_participants p LEFT JOIN voted v USING (transaction_id, participant)
        WHERE p.transaction_id = ANY($1::uuid[])
        GROUP BY p.transaction_id`,
      [
        votes.map((vote) => vote.transactionId),
        votes.map((vote) => vote.sender),
        votes.map((vote) => vote.payload.vote),
        votes.map((vote) => (vote.payload.vote === 'no' ? vote.payload.reason : null)),
      ],
    );
    return new Map(rows.map((row) => [row.transaction_id, row.pending]));
  }

  /**
   * Records acks (of the decisions their checkouts have) and completes each checkout that no
   * participant is left to ack. Answers the round trip of each ack recorded now.
   */
  private async recordAcks(
    manager: EntityManager,
    acks: ReadonlyArray<MessageOfType<'ack'>>,
  ): Promise<Map<string, { seconds: number; resends: number }>> {
    const rows = await manager.query<
      Array<{ transaction_id: string; participant: string; round_trip: number; resends: number }>
    >(
      `WITH ack AS (
         SELECT DISTINCT transaction_id, participant FROM unnest($1::uuid[], $2::text[]) AS a(transaction_id, participant)),
       acked AS (
         UPDATE tpc_participants p SET acked_at = now(), next_resend_at = NULL
           FROM ack a, tpc_transactions t
          WHERE p.transaction_id = a.transaction_id AND p.participant = a.participant AND p.acked_at IS NULL
            AND t.id = p.transaction_id
         RETURNING p.transaction_id, p.participant, extract(epoch FROM now() - t.decided_at)::float8 AS round_trip,
                   p.resends),
       completed AS (
         UPDATE tpc_transactions t SET completed_at = now()
          WHERE t.id IN (SELECT transaction_id FROM ack) AND t.completed_at IS NULL
            AND NOT EXISTS (SELECT 1 FROM tpc_participants p
                             WHERE p.transaction_id = t.id AND p.acked_at IS NULL
                               AND (p.transaction_id, p.participant) NOT IN (SELECT transaction_id, participant FROM ack)))
       SELECT transaction_id, participant, round_trip, resends FROM acked`,
      [acks.map((ack) => ack.transactionId), acks.map((ack) => ack.sender)],
    );
    return new Map(
      rows.map((row) => [
        `${row.transaction_id}/${row.participant}`,
        { seconds: row.round_trip, resends: row.resends },
      ]),
    );
  }

  /** Once the deciding transaction committed: a log line about the checkout, and the observer. */
  private decided(decision: DecisionTaken): void {
    withLogContext({ ...currentLogContext(), transactionId: decision.transactionId }, () =>
      this.options.logger.log(`decided ${decision.outcome}${decision.reason ? ` (${decision.reason})` : ''}`),
    );
    this.options.observer?.decided?.(decision);
  }

  /**
   * Takes a decision: the caller's view of the checkout says so at once, the decision goes to
   * every participant (outbox), and it joins `decisions`, to be recorded with them (`writeDecisions`).
   */
  private async decide(
    unit: UnitOfWork<unknown>,
    decisions: DecisionTaken[],
    { transactionId, outcome, reason }: Decided,
    cause: { messageId: string } | null,
    /** The checkout as the caller holds it (locked): it now says what was decided. */
    locked?: TransactionRow,
  ): Promise<DecisionTaken> {
    if (locked)
      Object.assign(locked, { state: outcome === 'commit' ? 'COMMITTED' : 'ABORTED', decision_reason: reason });
    send(
      unit,
      this.options.participants.map((participant) =>
        createMessage(Decision, {
          transactionId,
          sender: COORDINATOR,
          recipient: participant,
          payload: { outcome, ...(reason ? { reason } : {}) },
          causationId: cause?.messageId ?? null,
        }),
      ),
    );
    const taken: DecisionTaken = { transactionId, outcome, reason, latencySeconds: 0 };
    decisions.push(taken);
    return taken;
  }

  /**
   * Records decisions (state, reason, when each participant's copy is re-sent unless acked) in one
   * statement, and lets the domain apply them; each decision's latency is filled in.
   */
  private async writeDecisions(manager: EntityManager, decisions: DecisionTaken[]): Promise<void> {
    if (decisions.length === 0) return;
    // (TypeORM answers an UPDATE with [rows, affected count].)
    const [rows] = await manager.query<[Array<{ id: string; latency: number }>, number]>(
      `WITH decision AS (
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::float8[]) AS d(id, state, reason, resend_after)),
       resends AS (
         UPDATE tpc_participants p SET next_resend_at = now() + make_interval(secs => d.resend_after)
           FROM decision d WHERE p.transaction_id = d.id)
       UPDATE tpc_transactions t SET state = d.state, decision_reason = d.reason, decided_at = now()
         FROM decision d WHERE t.id = d.id
       RETURNING t.id, extract(epoch FROM t.decided_at - t.created_at)::float8 AS latency`,
      [
        decisions.map((decision) => decision.transactionId),
        decisions.map((decision) => (decision.outcome === 'commit' ? 'COMMITTED' : 'ABORTED')),
        decisions.map((decision) => decision.reason),
        decisions.map(() => backoffMs(0, this.resendBaseMs, this.resendCapMs) / 1000),
      ],
    );
    const latencies = new Map(rows.map((row) => [row.id, row.latency]));
    for (const decision of decisions) decision.latencySeconds = latencies.get(decision.transactionId) ?? 0;
    await this.options.hooks.onDecided(manager, decisions);
  }

  private sendDecision(
    unit: UnitOfWork<unknown>,
    cause: { messageId: string; transactionId: string },
    participant: Participant,
    outcome: Outcome,
    reason: string | null,
  ): void {
    send(unit, [
      createMessage(Decision, {
        transactionId: cause.transactionId,
        sender: COORDINATOR,
        recipient: participant,
        payload: { outcome, ...(reason ? { reason } : {}) },
        causationId: cause.messageId,
      }),
    ]);
  }
}

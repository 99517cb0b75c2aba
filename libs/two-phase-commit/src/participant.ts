import type { DataSource, EntityManager } from 'typeorm';
import {
  Ack,
  COORDINATOR,
  createMessage,
  Inquiry,
  MessageOfType,
  Outcome,
  Participant as ParticipantName,
  PreparePayload,
  Vote,
  VoteNoReason,
  VotePayload,
} from '@shop/contracts';
import { Inbox, inTransaction, UnitOfWork } from '@shop/inbox';
import { Logger, PoisonMessageError } from '@shop/messaging';
import type { ProtocolObserver } from './observer';
import { send } from './outgoing';

/**
 * What a participant app supplies: its own prepare / commit / abort against its own tables, each
 * run inside the kit's transaction (use the given manager). `prepare` returns its vote; when it
 * votes no, everything it wrote is rolled back for it, so it may stop half-way.
 */
export interface ParticipantResource<P extends ParticipantName> {
  prepare(
    manager: EntityManager,
    transactionId: string,
    request: Extract<PreparePayload, { participant: P }>,
  ): Promise<VotePayload>;
  /** Makes the prepared work permanent (reserved → sold, held → captured). */
  commit(manager: EntityManager, transactionId: string): Promise<void>;
  /** Releases the prepared work. */
  abort(manager: EntityManager, transactionId: string): Promise<void>;
}

export interface ParticipantOptions<P extends ParticipantName> {
  name: P;
  dataSource: DataSource;
  resource: ParticipantResource<P>;
  logger: Logger;
  observer?: ProtocolObserver;
}

type State = 'PREPARING' | 'PREPARED' | 'REFUSED' | 'COMMITTED' | 'ABORTED';

/**
 * The participant side of presumed-abort two-phase commit. Each message is handled in one local
 * transaction: inbox record, barrier check with the transaction's row locked, the resource's
 * work, the new state, and the reply in the outbox. Idempotent by message id (inbox) and by
 * state (a re-sent prepare or decision gets the same answer and changes nothing).
 */
export class Participant<P extends ParticipantName> {
  private readonly inbox: Inbox;

  constructor(private readonly options: ParticipantOptions<P>) {
    this.inbox = new Inbox(options.dataSource, `${options.name}.participant`);
  }

  async onPrepare(prepare: MessageOfType<'prepare'>, unit?: UnitOfWork): Promise<void> {
    await this.handleOnce(prepare, unit, async (manager) => {
      const vote = await this.prepare(manager, prepare);
      await send(manager, [
        createMessage(Vote, {
          transactionId: prepare.transactionId,
          sender: this.options.name,
          recipient: COORDINATOR,
          payload: vote,
          causationId: prepare.messageId,
        }),
      ]);
    });
  }

  async onDecision(decision: MessageOfType<'decision'>, unit?: UnitOfWork): Promise<void> {
    await this.handleOnce(decision, unit, async (manager) => {
      await this.apply(manager, decision.transactionId, decision.payload.outcome);
      await send(manager, [
        createMessage(Ack, {
          transactionId: decision.transactionId,
          sender: this.options.name,
          recipient: COORDINATOR,
          payload: { outcome: decision.payload.outcome },
          causationId: decision.messageId,
        }),
      ]);
    });
  }

  /**
   * Asks the coordinator about transactions held PREPARED longer than `olderThanMs`, at most once
   * per `everyMs` each. Safe in several replicas.
   */
  async inquireInDoubt(olderThanMs: number, everyMs: number, limit = 100): Promise<number> {
    return this.options.dataSource.transaction(async (manager) => {
      const inDoubt = await manager.query<Array<{ transaction_id: string; prepared_at: Date }>>(
        `SELECT transaction_id, prepared_at FROM tpc_participant_transactions
          WHERE state = 'PREPARED' AND prepared_at <= now() - make_interval(secs => $1)
            AND (last_inquiry_at IS NULL OR last_inquiry_at <= now() - make_interval(secs => $2))
          ORDER BY prepared_at LIMIT $3 FOR UPDATE SKIP LOCKED`,
        [olderThanMs / 1000, everyMs / 1000, limit],
      );
      if (inDoubt.length === 0) return 0;
      await send(
        manager,
        inDoubt.map((row) =>
          createMessage(Inquiry, {
            transactionId: row.transaction_id,
            sender: this.options.name,
            recipient: COORDINATOR,
            payload: { preparedAt: row.prepared_at.toISOString() },
          }),
        ),
      );
      await manager.query(
        `UPDATE tpc_participant_transactions SET last_inquiry_at = now(), inquiries = inquiries + 1
          WHERE transaction_id = ANY($1::uuid[])`,
        [inDoubt.map((row) => row.transaction_id)],
      );
      this.options.logger.warn(`asked the coordinator about ${inDoubt.length} in-doubt transaction(s)`);
      return inDoubt.length;
    });
  }

  /**
   * Runs `work` once per message id (inbox) in the given unit of work (a batch's transaction), or in
   * a transaction of its own; a duplicate is reported once committed.
   */
  private async handleOnce(
    message: { messageId: string; type: 'prepare' | 'decision' },
    unit: UnitOfWork | undefined,
    work: (manager: EntityManager) => Promise<void>,
  ): Promise<void> {
    if (!unit) return inTransaction(this.options.dataSource, (own) => this.handleOnce(message, own, work));
    if (!(await this.inbox.recordIn(unit, message.messageId))) {
      unit.afterCommit(() => this.options.observer?.duplicate?.(message.type));
      return;
    }
    await work(unit.manager);
  }

  private async prepare(manager: EntityManager, prepare: MessageOfType<'prepare'>): Promise<VotePayload> {
    const { transactionId, payload } = prepare;
    const fresh = await manager.query<unknown[]>(
      `INSERT INTO tpc_participant_transactions (transaction_id, state) VALUES ($1, 'PREPARING')
       ON CONFLICT DO NOTHING RETURNING transaction_id`,
      [transactionId],
    );
    if (fresh.length === 0) {
      // Seen before: answer from the recorded state (the barrier makes a late prepare vote no).
      const { state, vote_reason } = (await this.lock(manager, transactionId))!;
      if (state === 'PREPARED' || state === 'COMMITTED') return { vote: 'yes' };
      if (state === 'REFUSED') return { vote: 'no', reason: vote_reason as VoteNoReason };
      return { vote: 'no', reason: 'ALREADY_ABORTED' };
    }
    if (payload.participant !== this.options.name) {
      throw new PoisonMessageError(`prepare for ${payload.participant} delivered to ${this.options.name}`);
    }
    let vote: VotePayload;
    if (Date.parse(payload.deadline) <= Date.now()) {
      vote = { vote: 'no', reason: 'DEADLINE_PASSED' };
    } else {
      // A "no" must leave nothing held: undo whatever the resource did before refusing.
      await manager.query('SAVEPOINT tpc_prepare');
      vote = await this.options.resource.prepare(
        manager,
        transactionId,
        payload as Extract<PreparePayload, { participant: P }>,
      );
      await manager.query(vote.vote === 'yes' ? 'RELEASE SAVEPOINT tpc_prepare' : 'ROLLBACK TO SAVEPOINT tpc_prepare');
    }
    await manager.query(
      `UPDATE tpc_participant_transactions
          SET state = $2, vote_reason = $3, prepared_at = CASE WHEN $2 = 'PREPARED' THEN now() END
        WHERE transaction_id = $1`,
      [transactionId, vote.vote === 'yes' ? 'PREPARED' : 'REFUSED', vote.vote === 'no' ? vote.reason : null],
    );
    return vote;
  }

  private async apply(manager: EntityManager, transactionId: string, outcome: Outcome): Promise<void> {
    let recorded = await this.lock(manager, transactionId);
    if (!recorded) {
      if (await this.leaveBarrier(manager, transactionId)) {
        // Never prepared here: an abort leaves the barrier so a late prepare votes no and holds nothing.
        if (outcome === 'abort') return;
        throw new PoisonMessageError(`commit for ${transactionId}, which ${this.options.name} never prepared`);
      }
      recorded = (await this.lock(manager, transactionId))!; // a prepare recorded it meanwhile
    }
    const { state } = recorded;
    const target: State = outcome === 'commit' ? 'COMMITTED' : 'ABORTED';
    if (state === target) return; // already applied: just ack again
    if (state === 'PREPARED') {
      if (outcome === 'commit') await this.options.resource.commit(manager, transactionId);
      else await this.options.resource.abort(manager, transactionId);
    } else if (!(state === 'REFUSED' && outcome === 'abort')) {
      throw new PoisonMessageError(`${outcome} for ${transactionId}, which is ${state} in ${this.options.name}`);
    }
    await manager.query(
      `UPDATE tpc_participant_transactions SET state = $2, decided_at = now() WHERE transaction_id = $1`,
      [transactionId, target],
    );
  }

  /** Records the transaction as ABORTED, unless it is recorded already; true if it was not. */
  private async leaveBarrier(manager: EntityManager, transactionId: string): Promise<boolean> {
    const inserted = await manager.query<unknown[]>(
      `INSERT INTO tpc_participant_transactions (transaction_id, state, decided_at) VALUES ($1, 'ABORTED', now())
       ON CONFLICT DO NOTHING RETURNING transaction_id`,
      [transactionId],
    );
    return inserted.length > 0;
  }

  private async lock(
    manager: EntityManager,
    transactionId: string,
  ): Promise<{ state: State; vote_reason: string | null } | undefined> {
    const [row] = await manager.query<Array<{ state: State; vote_reason: string | null }>>(
      `SELECT state, vote_reason FROM tpc_participant_transactions WHERE transaction_id = $1 FOR UPDATE`,
      [transactionId],
    );
    return row;
  }
}

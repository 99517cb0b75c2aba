import type { DataSource, EntityManager } from 'typeorm';
import {
  Ack,
  CheckoutMessage,
  COORDINATOR,
  createMessage,
  Inquiry,
  MessageOfType,
  Outcome,
  Participant as ParticipantName,
  PreparePayload,
  Vote,
  VoteNoReason,
  VoteOf,
  VotePayload,
} from '@shop/contracts';
import { Inbox } from '@shop/inbox';
import type { Transactions, UnitOfWork } from '@shop/outbox';
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
  ): Promise<VoteOf<P>>;
  /** Makes the prepared work permanent (reserved → sold, held → captured). */
  commit(manager: EntityManager, transactionId: string): Promise<void>;
  /** Releases the prepared work. */
  abort(manager: EntityManager, transactionId: string): Promise<void>;
  /**
   * Set when `prepare` writes nothing whenever it votes no (say, one statement that changes rows
   * only if every line fits): the kit then runs it without a savepoint, two statements and a
   * subtransaction less per prepare. Unset, the kit rolls back whatever a refusing prepare wrote.
   */
  readonly refusesWithoutWriting?: boolean;
}

export interface ParticipantOptions<P extends ParticipantName> {
  name: P;
  dataSource: DataSource;
  /** Opens the participant's own units of work (inquiries, a message handled alone). */
  transactions: Transactions;
  resource: ParticipantResource<P>;
  logger: Logger;
  observer?: ProtocolObserver;
}

type State = 'PREPARING' | 'PREPARED' | 'REFUSED' | 'COMMITTED' | 'ABORTED';
type Recorded = { state: State; vote_reason: string | null };
type ParticipantMessage = MessageOfType<'prepare' | 'decision'>;

/** A unit of work as a participant is given it: a batch's transaction, with the batch's messages. */
export type ParticipantUnit = UnitOfWork<CheckoutMessage>;

/**
 * What one batch transaction read for its checkouts up front (see `batchState`), and the state
 * changes it keeps back. Those with only prepares in the batch were recorded PREPARING in one
 * statement, those with only decisions were locked in one. A checkout with both (an abort that
 * overtook its prepare) is read message by message, in delivery order, as outside a batch.
 */
interface BatchState {
  /** The checkouts read up front. */
  covered: Set<string>;
  /** Recorded PREPARING by this batch, not yet taken by their prepare. */
  fresh: Set<string>;
  /** The decided-only checkouts found, locked; kept current as the batch applies decisions. */
  recorded: Map<string, Recorded>;
  /** New states not written yet: written in one statement before the commit, or before a read. */
  changes: Map<string, StateChange>;
  /**
   * The database's clock at the batch transaction's start (`now()`, ms), returned by the insert
   * that records a fresh prepare: what its deadline is compared with.
   */
  databaseNow?: number;
}

/** A checkout's new state; `vote` when a prepare voted (its reason if no), `decided` when a decision applied. */
interface StateChange {
  state: State;
  vote?: VotePayload;
  decided?: true;
}

/**
 * The participant side of presumed-abort two-phase commit. Each message is handled in one local
 * transaction: inbox record, barrier check with the transaction's row locked, the resource's
 * work, the new state, and the reply in the outbox. Idempotent by message id (inbox) and by
 * state (a re-sent prepare or decision gets the same answer and changes nothing).
 */
export class Participant<P extends ParticipantName> {
  private readonly inbox: Inbox;
  /** Per batch transaction (its manager): what the batch read up front (`batchState`). */
  private readonly batches = new WeakMap<EntityManager, Promise<BatchState>>();

  constructor(private readonly options: ParticipantOptions<P>) {
    this.inbox = new Inbox(options.dataSource, `${options.name}.participant`);
  }

  /** A batch of prepares and decisions in one unit of work (one message alone is a batch of one). */
  async handle(unit: ParticipantUnit, messages: readonly ParticipantMessage[]): Promise<void> {
    for (const message of messages) {
      await unit.step(message, () =>
        message.type === 'prepare' ? this.onPrepare(message, unit) : this.onDecision(message, unit),
      );
    }
  }

  async onPrepare(prepare: MessageOfType<'prepare'>, unit?: ParticipantUnit): Promise<void> {
    await this.handleOnce(prepare, unit, async (own, batch) => {
      const vote = await this.prepare(own, prepare, batch);
      send(own, [
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

  async onDecision(decision: MessageOfType<'decision'>, unit?: ParticipantUnit): Promise<void> {
    await this.handleOnce(decision, unit, async (own, batch) => {
      await this.apply(own.manager, decision.transactionId, decision.payload.outcome, batch);
      send(own, [
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
    return this.options.transactions.run(async (unit) => {
      const { manager } = unit;
      const inDoubt = await manager.query<Array<{ transaction_id: string; prepared_at: Date }>>(
        `SELECT transaction_id, prepared_at FROM tpc_participant_transactions
          WHERE state = 'PREPARED' AND prepared_at <= now() - make_interval(secs => $1)
            AND (last_inquiry_at IS NULL OR last_inquiry_at <= now() - make_interval(secs => $2))
          ORDER BY prepared_at LIMIT $3 FOR UPDATE SKIP LOCKED`,
        [olderThanMs / 1000, everyMs / 1000, limit],
      );
      if (inDoubt.length === 0) return 0;
      send(
        unit,
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
    message: ParticipantMessage,
    unit: ParticipantUnit | undefined,
    work: (unit: ParticipantUnit, batch: BatchState) => Promise<void>,
  ): Promise<void> {
    if (!unit) {
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
    await work(unit, await this.batchState(unit, message));
  }

  /**
   * The unit's batch as read up front, once per batch transaction (nothing is read for a message
   * outside the unit's batch); its kept-back state changes are written before the commit.
   */
  private batchState(unit: ParticipantUnit, message: ParticipantMessage): Promise<BatchState> {
    let state = this.batches.get(unit.manager);
    if (!state) {
      const inBatch = unit.items.some((other) => other.messageId === message.messageId);
      const read = (state = this.readBatch(unit.manager, inBatch ? unit.items : []));
      this.batches.set(unit.manager, state);
      unit.beforeCommit(async () => this.writeChanges(unit.manager, await read));
    }
    return state;
  }

  private async readBatch(manager: EntityManager, messages: readonly CheckoutMessage[]): Promise<BatchState> {
    const kinds = new Map<string, Set<string>>();
    for (const { transactionId, type } of messages) {
      kinds.set(transactionId, (kinds.get(transactionId) ?? new Set()).add(type));
    }
    const only = (type: string) =>
      [...kinds].filter(([, types]) => types.size === 1 && types.has(type)).map(([id]) => id);
    const [preparing, deciding] = messages.length > 1 ? [only('prepare'), only('decision')] : [[], []];
    const fresh = preparing.length
      ? await manager.query<Array<{ transaction_id: string; now: Date }>>(
          // In id order, like every lock the kit takes, so that batches of two replicas cannot deadlock.
          `INSERT INTO tpc_participant_transactions (transaction_id, state)
           SELECT id, 'PREPARING' FROM unnest($1::uuid[]) AS id ORDER BY 1
           ON CONFLICT DO NOTHING RETURNING transaction_id, now()`,
          [preparing],
        )
      : [];
    const recorded = deciding.length
      ? await manager.query<Array<Recorded & { transaction_id: string }>>(
          `SELECT transaction_id, state, vote_reason FROM tpc_participant_transactions
            WHERE transaction_id = ANY($1::uuid[]) ORDER BY transaction_id FOR UPDATE`,
          [deciding],
        )
      : [];
    return {
      covered: new Set([...preparing, ...deciding]),
      fresh: new Set(fresh.map((row) => row.transaction_id)),
      recorded: new Map(recorded.map(({ transaction_id, ...row }) => [transaction_id, row])),
      changes: new Map(),
      databaseNow: fresh[0]?.now.getTime(),
    };
  }

  /** Records a prepare not covered by the batch's insert: false when its checkout was known already. */
  private async record(manager: EntityManager, { transactionId }: MessageOfType<'prepare'>, batch: BatchState) {
    const [row] = await manager.query<Array<{ now: Date }>>(
      `INSERT INTO tpc_participant_transactions (transaction_id, state) VALUES ($1, 'PREPARING')
       ON CONFLICT DO NOTHING RETURNING now()`,
      [transactionId],
    );
    if (row) batch.databaseNow ??= row.now.getTime();
    return row !== undefined;
  }

  /** Keeps a checkout's new state back, to be written with the batch's others. */
  private change(batch: BatchState, transactionId: string, change: StateChange): void {
    const earlier = batch.changes.get(transactionId);
    batch.changes.set(transactionId, { ...earlier, ...change });
  }

  /** Writes the kept-back state changes, in one statement. */
  private async writeChanges(manager: EntityManager, batch: BatchState): Promise<void> {
    if (batch.changes.size === 0) return;
    const changes = [...batch.changes];
    batch.changes.clear();
    // now() is the transaction's start, written late or not. Every row here is locked already. A
    // vote without a reason is a yes: prepared then, whatever state a later decision gave it.
    await manager.query(
      `UPDATE tpc_participant_transactions t
          SET state = c.state,
              vote_reason = CASE WHEN c.voted THEN c.vote_reason ELSE t.vote_reason END,
              prepared_at = CASE WHEN c.voted THEN CASE WHEN c.vote_reason IS NULL THEN now() END ELSE t.prepared_at END,
              decided_at = CASE WHEN c.decided THEN now() ELSE t.decided_at END
         FROM unnest($1::uuid[], $2::text[], $3::bool[], $4::text[], $5::bool[]) AS c(id, state, voted, vote_reason, decided)
        WHERE t.transaction_id = c.id`,
      [
        changes.map(([id]) => id),
        changes.map(([, change]) => change.state),
        changes.map(([, change]) => change.vote !== undefined),
        changes.map(([, change]) => (change.vote?.vote === 'no' ? change.vote.reason : null)),
        changes.map(([, change]) => change.decided === true),
      ],
    );
  }

  private async prepare(
    unit: ParticipantUnit,
    prepare: MessageOfType<'prepare'>,
    batch: BatchState,
  ): Promise<VotePayload> {
    const { manager } = unit;
    const { transactionId, payload } = prepare;
    const fresh = batch.covered.has(transactionId)
      ? batch.fresh.delete(transactionId)
      : await this.record(manager, prepare, batch);
    if (!fresh) {
      // Seen before: answer from the recorded state (the barrier makes a late prepare vote no).
      const { state, vote_reason } = (await this.lock(manager, transactionId, batch))!;
      if (state === 'PREPARED' || state === 'COMMITTED') return { vote: 'yes' };
      if (state === 'REFUSED') return { vote: 'no', reason: vote_reason as VoteNoReason };
      return { vote: 'no', reason: 'ALREADY_ABORTED' };
    }
    if (payload.participant !== this.options.name) {
      throw new PoisonMessageError(`prepare for ${payload.participant} delivered to ${this.options.name}`);
    }
    let vote: VotePayload;
    // The deadline was stamped on the database's clock; it is compared with the database's too,
    // never with this process's (a skewed host clock must not refuse or admit a prepare).
    if (Date.parse(payload.deadline) <= batch.databaseNow!) {
      vote = { vote: 'no', reason: 'DEADLINE_PASSED' };
    } else {
      const { resource } = this.options;
      const request = payload as Extract<PreparePayload, { participant: P }>;
      if (resource.refusesWithoutWriting) {
        vote = await resource.prepare(manager, transactionId, request);
      } else {
        // A "no" must leave nothing held: undo whatever the resource did (and sent) before refusing.
        vote = await unit.savepoint(
          () => resource.prepare(manager, transactionId, request),
          (cast) => cast.vote === 'yes',
        );
      }
    }
    this.change(batch, transactionId, { state: vote.vote === 'yes' ? 'PREPARED' : 'REFUSED', vote });
    return vote;
  }

  private async apply(
    manager: EntityManager,
    transactionId: string,
    outcome: Outcome,
    batch: BatchState,
  ): Promise<void> {
    let recorded = batch.covered.has(transactionId)
      ? batch.recorded.get(transactionId)
      : await this.lock(manager, transactionId, batch);
    if (!recorded) {
      if (await this.leaveBarrier(manager, transactionId)) {
        // Never prepared here: an abort leaves the barrier so a late prepare votes no and holds nothing.
        if (outcome === 'abort') return;
        throw new PoisonMessageError(`commit for ${transactionId}, which ${this.options.name} never prepared`);
      }
      recorded = (await this.lock(manager, transactionId, batch))!; // a prepare recorded it meanwhile
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
    this.change(batch, transactionId, { state: target, decided: true });
    recorded.state = target; // the batch's later messages see it
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

  /** Locks and reads a checkout's row (the batch's kept-back changes written first, so that it reads them). */
  private async lock(manager: EntityManager, transactionId: string, batch: BatchState): Promise<Recorded | undefined> {
    await this.writeChanges(manager, batch);
    const [row] = await manager.query<Recorded[]>(
      `SELECT state, vote_reason FROM tpc_participant_transactions WHERE transaction_id = $1 FOR UPDATE`,
      [transactionId],
    );
    return row;
  }
}

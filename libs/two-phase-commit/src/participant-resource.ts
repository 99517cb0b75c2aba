import type { Participant as ParticipantName, PreparePayload, VoteOf } from '@shop/contracts';
import type { UnitOfWork } from '@shop/outbox';

/** What participant P is asked to prepare: its own request's fields, with the deadline. */
export type PrepareRequestOf<P extends ParticipantName> = Extract<PreparePayload, { participant: P }>;

/** One checkout's prepare, as the resource is asked it. */
export interface PrepareOf<P extends ParticipantName> {
  transactionId: string;
  request: PrepareRequestOf<P>;
}

/**
 * What a participant app supplies: its own prepare / commit / abort against its own tables, each
 * run in the kit's unit of work (read and write with `unit.manager`; send with `unit.send`). Each
 * is asked for a set of checkouts at once (a batch's; one alone is a set of one), so that a batch
 * costs a few statements, not a few per checkout. Each checkout is in a set at most once.
 */
export interface ParticipantResource<P extends ParticipantName> {
  /**
   * Votes on each prepare, in the order given (answer one vote per prepare, in that order), and
   * holds what each "yes" promises. Judge each against what the ones before it took: they may
   * share rows (a SKU, an account). A "no" must leave nothing written or sent for its checkout
   * (judge first, then write the yes votes' holds): nothing takes it back.
   */
  prepare(unit: UnitOfWork<unknown>, prepares: ReadonlyArray<PrepareOf<P>>): Promise<Array<VoteOf<P>>>;
  /** Makes the prepared work of these checkouts permanent (reserved → sold, held → captured). */
  commit(unit: UnitOfWork<unknown>, transactionIds: readonly string[]): Promise<void>;
  /** Releases the prepared work of these checkouts. */
  abort(unit: UnitOfWork<unknown>, transactionIds: readonly string[]): Promise<void>;
  /**
   * Locks every row of the resource's own that a batch may touch (SKUs, accounts), in one fixed
   * order, before any message of it is handled: `prepares` will be prepared, the checkouts in
   * `decided` may be committed or aborted. Called when a batch has more than one of these; a
   * call for one checkout alone must lock what it touches in that same order itself. Without
   * it, two batches that touch the same rows in opposite orders deadlock (one of them is rolled
   * back and re-run).
   */
  lock?(unit: UnitOfWork<unknown>, batch: ResourceBatch<P>): Promise<void>;
}

/** A batch as `ParticipantResource.lock` sees it. */
export interface ResourceBatch<P extends ParticipantName> {
  prepares: ReadonlyArray<PrepareOf<P>>;
  decided: readonly string[];
}

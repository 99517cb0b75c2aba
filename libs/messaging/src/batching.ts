import type { Delivery, Disposition } from './delivery';

/** A decoded delivery of a batch, as the batch handler sees it. */
export interface BatchEntry<T> {
  message: T;
  delivery: Delivery;
  /** Runs `work` in this message's trace span and log context. */
  within<R>(work: () => Promise<R>): Promise<R>;
}

/** What became of one message of a batch: its disposition, or the error its handler failed with. */
export type BatchOutcome = { ok: true; value: Disposition | void } | { ok: false; error: unknown };

/** Handles the deliveries of one batch; answers one outcome per entry, in order. */
export type BatchHandler<T> = (batch: ReadonlyArray<BatchEntry<T>>) => Promise<BatchOutcome[]>;

/** A batch handler that handles each message on its own, in turn (no shared transaction). */
export function oneAtATime<T>(
  handle: (message: T, delivery: Delivery) => Promise<Disposition | void>,
): BatchHandler<T> {
  return async (batch) => {
    const outcomes: BatchOutcome[] = [];
    for (const entry of batch) {
      try {
        outcomes.push({ ok: true, value: await entry.within(() => handle(entry.message, entry.delivery)) });
      } catch (error) {
        outcomes.push({ ok: false, error });
      }
    }
    return outcomes;
  };
}

/**
 * The outcome of every entry of a batch from its handler: all failed with its error if it
 * threw, and a failure for an entry it answered nothing for.
 */
export async function outcomesOf<T>(
  handleBatch: BatchHandler<T>,
  batch: ReadonlyArray<BatchEntry<T>>,
): Promise<BatchOutcome[]> {
  let outcomes: BatchOutcome[];
  try {
    outcomes = await handleBatch(batch);
  } catch (error) {
    return batch.map(() => ({ ok: false, error }));
  }
  return batch.map((_, index) => outcomes[index] ?? { ok: false, error: new Error('no outcome') });
}

/**
 * Gathers items (deliveries) into batches of at most `batchSize` and hands them to `process`,
 * one batch at a time: items that arrive while a batch is processed wait and go together in the
 * next one, so the batches of one consumer never wait on each other's locks. An item may weigh
 * more than one (a delivery packing several messages): a batch holds at most `batchSize` of
 * weight, and at least one item.
 */
export class BatchQueue<I> {
  private readonly waiting: I[] = [];
  private processing = 0;
  private draining: Promise<void> | undefined;

  constructor(
    private readonly batchSize: number,
    private readonly process: (batch: I[]) => Promise<void>,
    private readonly weight: (item: I) => number = () => 1,
  ) {}

  push(item: I): void {
    this.waiting.push(item);
    this.schedule();
  }

  /** Items waiting or being processed. */
  get size(): number {
    return this.waiting.length + this.processing;
  }

  /** Resolves once nothing is being processed (what waits then is processed after, as usual). */
  async idle(): Promise<void> {
    while (this.draining) await this.draining;
  }

  /** Starts processing what is waiting, unless a batch is already in hand (it takes the rest after). */
  private schedule(): void {
    if (this.draining) return;
    this.draining = this.drain().finally(() => {
      this.draining = undefined;
      if (this.waiting.length > 0) this.schedule();
    });
  }

  /** How many of the waiting items fit in the next batch. */
  private takeable(): number {
    let weight = 0;
    let count = 0;
    while (count < this.waiting.length && count < this.batchSize) {
      weight += this.weight(this.waiting[count]);
      if (count > 0 && weight > this.batchSize) break;
      count += 1;
    }
    return count;
  }

  private async drain(): Promise<void> {
    // Items that arrived together (a prefetch refill) join one batch.
    await new Promise((resolve) => setImmediate(resolve));
    while (this.waiting.length > 0) {
      const batch = this.waiting.splice(0, this.takeable());
      this.processing = batch.length;
      try {
        await this.process(batch);
      } finally {
        this.processing = 0;
      }
    }
  }
}

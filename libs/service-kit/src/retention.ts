import { BeforeApplicationShutdown, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { PeriodicTask } from '@shop/messaging';

/** One small indexed statement a minute per kind of record, like the outbox relay's prune. */
export const PRUNE_INTERVAL_MS = 60_000;

/** Deletes (or forgets) the records past retention of one kind; answers how many. */
export type Prune = () => Promise<number>;

/**
 * What a service keeps only for a while (handled message ids in the inbox, the order service's
 * Idempotency-Keys, ...) is pruned here: each kind registers its prune, and one timer runs them
 * one after another (one background connection). A failed prune is logged and tried again at the
 * next round. The outbox relay prunes its sent rows itself.
 */
@Injectable()
export class Retention implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(Retention.name);
  private readonly prunes = new Map<string, Prune>();
  private readonly task = new PeriodicTask('retention prune', PRUNE_INTERVAL_MS, () => this.prune(), this.logger);

  register(what: string, prune: Prune): void {
    this.prunes.set(what, prune);
  }

  /** Runs every registered prune once; how many records each removed (0 when it failed). */
  async prune(): Promise<Record<string, number>> {
    const removed: Record<string, number> = {};
    for (const [what, prune] of this.prunes) {
      try {
        removed[what] = await prune();
      } catch (err) {
        this.logger.warn(`${what} prune failed: ${String(err)}`);
        removed[what] = 0;
      }
    }
    return removed;
  }

  onApplicationBootstrap(): void {
    this.task.start();
  }

  beforeApplicationShutdown(): Promise<void> {
    return this.task.stop();
  }
}

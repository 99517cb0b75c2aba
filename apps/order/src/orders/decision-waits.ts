import { Inject, Injectable, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { SERVICE_CONFIG } from '@shop/service-kit';
import type { OrderConfig } from '../config';
import { DecisionListener, DecisionSubscriber } from './decision-listener';

/**
 * Requests waiting for an order's decision (`Prefer: wait`). They cost nothing while they wait:
 * the one LISTEN connection wakes the waiters of a decided order (or all of them when
 * announcements may have been missed), and only then do they read the order again. At most
 * PREFER_WAIT_MAX_WAITERS wait at once; beyond that a request is answered without waiting.
 */
@Injectable()
export class DecisionWaits implements DecisionSubscriber, OnApplicationBootstrap, OnModuleDestroy {
  private readonly waiters = new Map<string, Set<(announced: boolean) => void>>();
  private count = 0;
  private unsubscribe: (() => void) | undefined;

  constructor(
    @Inject(SERVICE_CONFIG) private readonly config: OrderConfig,
    private readonly decisions: DecisionListener,
  ) {}

  onApplicationBootstrap(): void {
    this.unsubscribe = this.decisions.subscribe(this);
  }

  onModuleDestroy(): void {
    this.unsubscribe?.();
    this.resync();
  }

  get hasRoom(): boolean {
    return this.count < this.config.PREFER_WAIT_MAX_WAITERS;
  }

  /**
   * Resolves true when the order may have been decided (an announcement), false after `maxMs` or
   * once `stop` aborts. It waits from this call on: register, then read the order, so that a
   * decision announced during the read is not missed.
   */
  next(orderId: string, maxMs: number, stop?: AbortSignal): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      if (stop?.aborted) return resolve(false);
      const waiters = this.waiters.get(orderId) ?? new Set();
      const wake = (announced: boolean) => {
        clearTimeout(timer);
        stop?.removeEventListener('abort', giveUp);
        if (waiters.delete(wake)) this.count -= 1;
        if (waiters.size === 0 && this.waiters.get(orderId) === waiters) this.waiters.delete(orderId);
        resolve(announced);
      };
      const giveUp = () => wake(false);
      const timer = setTimeout(giveUp, maxMs);
      stop?.addEventListener('abort', giveUp);
      waiters.add(wake);
      this.count += 1;
      this.waiters.set(orderId, waiters);
    });
  }

  decided(orderId: string): void {
    for (const wake of [...(this.waiters.get(orderId) ?? [])]) wake(true);
  }

  resync(): void {
    for (const waiters of [...this.waiters.values()]) for (const wake of [...waiters]) wake(true);
  }
}

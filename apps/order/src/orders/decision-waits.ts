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
  private readonly waiters = new Map<string, Set<() => void>>();
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

  /** Resolves when the order may have been decided (an announcement), or after `maxMs`. */
  next(orderId: string, maxMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const waiters = this.waiters.get(orderId) ?? new Set();
      const wake = () => {
        clearTimeout(timer);
        if (waiters.delete(wake)) this.count -= 1;
        if (waiters.size === 0 && this.waiters.get(orderId) === waiters) this.waiters.delete(orderId);
        resolve();
      };
      const timer = setTimeout(wake, maxMs);
      waiters.add(wake);
      this.count += 1;
      this.waiters.set(orderId, waiters);
    });
  }

  decided(orderId: string): void {
    for (const wake of [...(this.waiters.get(orderId) ?? [])]) wake();
  }

  resync(): void {
    for (const waiters of [...this.waiters.values()]) for (const wake of [...waiters]) wake();
  }
}

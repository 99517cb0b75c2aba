import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import type { Outcome } from '@shop/contracts';
import type { CoordinatorHooks } from '@shop/two-phase-commit';

/** Channel (per schema) on which a decided order's id is announced, for `Prefer: wait`. */
export const ORDER_DECIDED_CHANNEL = 'order_decided';

/** Applies the coordinator's decision to the order, in the deciding transaction. */
@Injectable()
export class OrderDecisions implements CoordinatorHooks {
  async onDecided(manager: EntityManager, orderId: string, outcome: Outcome, reason: string | null): Promise<void> {
    // The order's new status, and its id announced to the listeners once committed (one statement).
    await manager.query(
      `WITH announced AS (SELECT pg_notify(current_schema() || '.${ORDER_DECIDED_CHANNEL}', $1::text))
       UPDATE orders SET status = $2, reason = $3, decided_at = now() FROM announced WHERE id = $1::uuid`,
      [orderId, outcome === 'commit' ? 'CONFIRMED' : 'CANCELLED', outcome === 'commit' ? null : reason],
    );
  }
}

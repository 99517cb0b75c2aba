import { Injectable } from '@nestjs/common';
import type { UnitOfWork } from '@shop/outbox';
import type { CoordinatorHooks, Decided } from '@shop/two-phase-commit';

/** Channel (per schema) on which a decided order's id is announced, for `Prefer: wait`. */
export const ORDER_DECIDED_CHANNEL = 'order_decided';

/** Applies the coordinator's decisions to the orders, in the deciding transaction. */
@Injectable()
export class OrderDecisions implements CoordinatorHooks {
  async onDecided(unit: UnitOfWork<unknown>, decisions: readonly Decided[]): Promise<void> {
    // The orders' new status, and their ids announced to the listeners once committed (one statement).
    await unit.manager.query(
      `WITH decided AS (
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[]) AS d(id, status, reason)),
       announced AS (
         SELECT count(pg_notify(current_schema() || '.${ORDER_DECIDED_CHANNEL}', id::text)) FROM decided)
       UPDATE orders o SET status = d.status, reason = d.reason, decided_at = now()
         FROM decided d, announced WHERE o.id = d.id`,
      [
        decisions.map((decision) => decision.transactionId),
        decisions.map((decision) => (decision.outcome === 'commit' ? 'CONFIRMED' : 'CANCELLED')),
        decisions.map((decision) => (decision.outcome === 'commit' ? null : decision.reason)),
      ],
    );
  }
}

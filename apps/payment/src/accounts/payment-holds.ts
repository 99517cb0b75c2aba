import { Injectable } from '@nestjs/common';
import type { VoteOf } from '@shop/contracts';
import type { UnitOfWork } from '@shop/outbox';
import type { ParticipantResource, PrepareRequestOf, ResourceBatch } from '@shop/two-phase-commit';

/**
 * The payment's part of a checkout: hold the amount, then capture or release it. Account rows
 * are always locked in customer order: a batch's all at once first (`lock`); each step alone
 * touches one account.
 */
@Injectable()
export class PaymentHolds implements ParticipantResource<'payment'> {
  /** `prepare` holds only if the balance covers the amount, in one statement: a "no" has written nothing. */
  readonly refusesWithoutWriting = true;

  /** The accounts of the batch's prepares and of its decided checkouts' holds. */
  async lock(unit: UnitOfWork<unknown>, { prepares, decided }: ResourceBatch<'payment'>): Promise<void> {
    await unit.manager.query(
      `SELECT 1 FROM accounts
        WHERE customer_id IN (SELECT unnest($1::text[]) UNION SELECT customer_id FROM holds WHERE transaction_id = ANY($2::uuid[]))
        ORDER BY customer_id FOR UPDATE`,
      [prepares.map(({ request }) => request.customerId), decided],
    );
  }

  async prepare(
    unit: UnitOfWork<unknown>,
    transactionId: string,
    request: PrepareRequestOf<'payment'>,
  ): Promise<VoteOf<'payment'>> {
    // One statement: holds the money only if the balance covers it, and records the hold.
    const [{ held }] = await unit.manager.query<Array<{ held: number }>>(
      `WITH held AS (
         UPDATE accounts SET balance = balance - $3, held = held + $3, updated_at = now()
          WHERE customer_id = $2 AND balance >= $3 RETURNING customer_id),
       recorded AS (
         INSERT INTO holds (transaction_id, customer_id, amount, currency) SELECT $1, customer_id, $3, $4 FROM held)
       SELECT count(*)::int AS held FROM held`,
      [transactionId, request.customerId, request.amount, request.currency],
    );
    if (held === 0) {
      const [exists] = await unit.manager.query<unknown[]>(`SELECT 1 FROM accounts WHERE customer_id = $1`, [
        request.customerId,
      ]);
      return { vote: 'no', reason: exists ? 'INSUFFICIENT_FUNDS' : 'UNKNOWN_ACCOUNT' };
    }
    return { vote: 'yes' };
  }

  async commit(unit: UnitOfWork<unknown>, transactionId: string): Promise<void> {
    await unit.manager.query(
      `UPDATE accounts a SET held = a.held - h.amount, captured = a.captured + h.amount, updated_at = now()
         FROM holds h WHERE h.transaction_id = $1 AND a.customer_id = h.customer_id`,
      [transactionId],
    );
  }

  async abort(unit: UnitOfWork<unknown>, transactionId: string): Promise<void> {
    await unit.manager.query(
      `UPDATE accounts a SET held = a.held - h.amount, balance = a.balance + h.amount, updated_at = now()
         FROM holds h WHERE h.transaction_id = $1 AND a.customer_id = h.customer_id`,
      [transactionId],
    );
  }
}

import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import type { PreparePayload, VoteOf } from '@shop/contracts';
import type { ParticipantResource } from '@shop/two-phase-commit';

/** The payment's part of a checkout: hold the amount, then capture or release it. */
@Injectable()
export class PaymentHolds implements ParticipantResource<'payment'> {
  /** `prepare` holds only if the balance covers the amount, in one statement: a "no" has written nothing. */
  readonly refusesWithoutWriting = true;

  async prepare(
    manager: EntityManager,
    transactionId: string,
    request: Extract<PreparePayload, { participant: 'payment' }>,
  ): Promise<VoteOf<'payment'>> {
    // One statement: holds the money only if the balance covers it, and records the hold.
    const [{ held }] = await manager.query<Array<{ held: number }>>(
      `WITH held AS (
         UPDATE accounts SET balance = balance - $3, held = held + $3, updated_at = now()
          WHERE customer_id = $2 AND balance >= $3 RETURNING customer_id),
       recorded AS (
         INSERT INTO holds (transaction_id, customer_id, amount, currency) SELECT $1, customer_id, $3, $4 FROM held)
       SELECT count(*)::int AS held FROM held`,
      [transactionId, request.customerId, request.amount, request.currency],
    );
    if (held === 0) {
      const [exists] = await manager.query<unknown[]>(`SELECT 1 FROM accounts WHERE customer_id = $1`, [
        request.customerId,
      ]);
      return { vote: 'no', reason: exists ? 'INSUFFICIENT_FUNDS' : 'UNKNOWN_ACCOUNT' };
    }
    return { vote: 'yes' };
  }

  async commit(manager: EntityManager, transactionId: string): Promise<void> {
    await manager.query(
      `UPDATE accounts a SET held = a.held - h.amount, captured = a.captured + h.amount, updated_at = now()
         FROM holds h WHERE h.transaction_id = $1 AND a.customer_id = h.customer_id`,
      [transactionId],
    );
  }

  async abort(manager: EntityManager, transactionId: string): Promise<void> {
    await manager.query(
      `UPDATE accounts a SET held = a.held - h.amount, balance = a.balance + h.amount, updated_at = now()
         FROM holds h WHERE h.transaction_id = $1 AND a.customer_id = h.customer_id`,
      [transactionId],
    );
  }
}

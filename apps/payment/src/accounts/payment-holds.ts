import { Injectable } from '@nestjs/common';
import type { VoteOf } from '@shop/contracts';
import type { UnitOfWork } from '@shop/outbox';
import type { ParticipantResource, PrepareOf, ResourceBatch } from '@shop/two-phase-commit';

/**
 * The payment's part of a checkout: hold the amount, then capture or release it. Each step takes
 * a set of checkouts in a statement or two. Account rows are always locked in customer order: a
 * batch's all at once first (`lock`); one checkout alone touches one account.
 */
@Injectable()
export class PaymentHolds implements ParticipantResource<'payment'> {
  /** The accounts of the batch's prepares and of its decided checkouts' holds. */
  async lock(unit: UnitOfWork<unknown>, { prepares, decided }: ResourceBatch<'payment'>): Promise<void> {
    await unit.manager.query(
      `SELECT 1 FROM accounts
        WHERE customer_id IN (SELECT unnest($1::text[]) UNION SELECT customer_id FROM holds WHERE transaction_id = ANY($2::uuid[]))
        ORDER BY customer_id FOR UPDATE`,
      [prepares.map(({ request }) => request.customerId), decided],
    );
  }

  /** Reads the balances, judges the checkouts in turn, then holds the yes votes' amounts in one statement. */
  async prepare(
    unit: UnitOfWork<unknown>,
    prepares: ReadonlyArray<PrepareOf<'payment'>>,
  ): Promise<Array<VoteOf<'payment'>>> {
    const rows = await unit.manager.query<Array<{ customer_id: string; balance: string }>>(
      `SELECT customer_id, balance FROM accounts WHERE customer_id = ANY($1::text[]) ORDER BY customer_id FOR UPDATE`,
      [[...new Set(prepares.map(({ request }) => request.customerId))]],
    );
    // A bigint as a number: every account's deposited is at most 2^53 - 1 (account.entity.ts).
    const balance = new Map(rows.map((row) => [row.customer_id, Number(row.balance)]));
    const held: Array<PrepareOf<'payment'>> = [];
    const votes = prepares.map((prepare): VoteOf<'payment'> => {
      const { customerId, amount } = prepare.request;
      const left = balance.get(customerId);
      if (left === undefined) return { vote: 'no', reason: 'UNKNOWN_ACCOUNT' };
      if (left < amount) return { vote: 'no', reason: 'INSUFFICIENT_FUNDS' };
      balance.set(customerId, left - amount);
      held.push(prepare);
      return { vote: 'yes' };
    });
    if (held.length > 0) {
      await unit.manager.query(
        `WITH hold AS (
           SELECT * FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::text[]) AS hold(transaction_id, customer_id, amount, currency)),
         held AS (
           UPDATE accounts a SET balance = a.balance - h.amount, held = a.held + h.amount, updated_at = now()
             FROM (SELECT customer_id, sum(amount) AS amount FROM hold GROUP BY customer_id) h WHERE a.customer_id = h.customer_id)
         INSERT INTO holds (transaction_id, customer_id, amount, currency) SELECT transaction_id, customer_id, amount, currency FROM hold`,
        [
          held.map(({ transactionId }) => transactionId),
          held.map(({ request }) => request.customerId),
          held.map(({ request }) => request.amount),
          held.map(({ request }) => request.currency),
        ],
      );
    }
    return votes;
  }

  async commit(unit: UnitOfWork<unknown>, transactionIds: readonly string[]): Promise<void> {
    await unit.manager.query(
      `UPDATE accounts a SET held = a.held - h.amount, captured = a.captured + h.amount, updated_at = now()
         FROM (${HELD_BY_ACCOUNT}) h WHERE a.customer_id = h.customer_id`,
      [transactionIds],
    );
  }

  async abort(unit: UnitOfWork<unknown>, transactionIds: readonly string[]): Promise<void> {
    await unit.manager.query(
      `UPDATE accounts a SET held = a.held - h.amount, balance = a.balance + h.amount, updated_at = now()
         FROM (${HELD_BY_ACCOUNT}) h WHERE a.customer_id = h.customer_id`,
      [transactionIds],
    );
  }
}

/** The checkouts' holds summed by account (an UPDATE changes a row once). */
const HELD_BY_ACCOUNT = `SELECT customer_id, sum(amount) AS amount FROM holds WHERE transaction_id = ANY($1::uuid[]) GROUP BY customer_id`;

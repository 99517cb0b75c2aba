-- The payment service's own invariants (run by the invariant checker of the tests and the
-- benchmark, scripts/lib/checkout-invariants.mjs): one row (kind, message) per violation.
--   per account in scope: balance + held + captured = deposited, nothing negative;
--     captured = Σ holds of COMMITTED transactions, held = Σ of PREPARED ones;
--     at rest ($quiescent) nothing held;
--   per PREPARED or COMMITTED transaction in scope: it holds the order's total, of its customer.
WITH accounts AS (
  SELECT a.customer_id, a.balance, a.held, a.captured, a.deposited,
         COALESCE((SELECT sum(h.amount) FROM payment_svc.holds h
                     JOIN payment_svc.tpc_participant_transactions t ON t.transaction_id = h.transaction_id
                    WHERE h.customer_id = a.customer_id AND t.state = 'COMMITTED'), 0) AS committed,
         COALESCE((SELECT sum(h.amount) FROM payment_svc.holds h
                     JOIN payment_svc.tpc_participant_transactions t ON t.transaction_id = h.transaction_id
                    WHERE h.customer_id = a.customer_id AND t.state = 'PREPARED'), 0) AS prepared
    FROM payment_svc.accounts a
   WHERE $resources::text[] IS NULL OR a.customer_id = ANY($resources::text[])
), figures AS (
  SELECT *, format('balance=%s held=%s captured=%s deposited=%s', balance, held, captured, deposited) AS fig FROM accounts
), held AS (
  SELECT t.transaction_id, o.total, o.customer_id,
         (SELECT COALESCE(jsonb_agg(jsonb_build_object('customerId', h.customer_id, 'amount', h.amount)), '[]')
            FROM payment_svc.holds h WHERE h.transaction_id = t.transaction_id) AS holds
    FROM payment_svc.tpc_participant_transactions t
    JOIN order_svc.orders o ON o.id = t.transaction_id
   WHERE t.state IN ('PREPARED', 'COMMITTED')
     AND ($transactions::text[] IS NULL OR t.transaction_id::text = ANY($transactions::text[]))
)
SELECT 'safety' AS kind, format('account %s: a negative figure (%s)', customer_id, fig) AS message
  FROM figures WHERE balance < 0 OR held < 0 OR captured < 0
UNION ALL
SELECT 'safety', format('account %s: balance+held+captured = %s ≠ deposited %s (%s)', customer_id, balance + held + captured, deposited, fig)
  FROM figures WHERE balance + held + captured <> deposited
UNION ALL
SELECT 'safety', format('account %s: captured %s ≠ %s held by COMMITTED payment transactions', customer_id, captured, committed)
  FROM figures WHERE captured <> committed
UNION ALL
SELECT 'safety', format('account %s: held %s ≠ %s held by PREPARED payment transactions', customer_id, held, prepared)
  FROM figures WHERE held <> prepared
UNION ALL
SELECT 'liveness', format('account %s: %s still held', customer_id, held)
  FROM figures WHERE $quiescent::boolean AND held <> 0
UNION ALL
SELECT 'safety', format('order %s: payment holds %s but the order is %s for %s', transaction_id, holds, total, customer_id)
  FROM held WHERE holds <> jsonb_build_array(jsonb_build_object('customerId', customer_id, 'amount', total))

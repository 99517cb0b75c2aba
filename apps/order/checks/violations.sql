-- The order service's own invariants, as the coordinator (run by the invariant checker of the
-- tests and the benchmark, scripts/lib/checkout-invariants.mjs): one row (kind, message) per
-- violation, per order in scope ($transactions: an order's id is its transaction's).
--   its status agrees with its transaction's decision (PENDING ⇔ PREPARING, CONFIRMED ⇔
--   COMMITTED, CANCELLED ⇔ ABORTED); CANCELLED carries a reason; it has lines and is priced as
--   they say; at rest ($quiescent) none is PENDING.
WITH orders AS (
  SELECT o.id, o.status, o.reason, o.total, t.state AS decision,
         (SELECT count(*) FROM order_svc.order_items i WHERE i.order_id = o.id) AS lines,
         (SELECT COALESCE(sum(i.quantity::bigint * i.unit_price), 0) FROM order_svc.order_items i
           WHERE i.order_id = o.id) AS items_total
    FROM order_svc.orders o
    LEFT JOIN order_svc.tpc_transactions t ON t.id = o.id
   WHERE $transactions::text[] IS NULL OR o.id::text = ANY($transactions::text[])
)
SELECT 'safety' AS kind,
       format('order %s: status %s but its transaction is %s', id, status, COALESCE(decision, 'none')) AS message
  FROM orders
 WHERE decision IS DISTINCT FROM CASE status WHEN 'PENDING' THEN 'PREPARING' WHEN 'CONFIRMED' THEN 'COMMITTED'
                                             WHEN 'CANCELLED' THEN 'ABORTED' END
UNION ALL
SELECT 'safety', format('order %s: CANCELLED without a reason', id) FROM orders WHERE status = 'CANCELLED' AND reason IS NULL
UNION ALL
SELECT 'safety', format('order %s: has no items', id) FROM orders WHERE lines = 0
UNION ALL
SELECT 'safety', format('order %s: total %s ≠ Σ lines %s', id, total, items_total) FROM orders WHERE total <> items_total
UNION ALL
SELECT 'liveness', format('order %s: still PENDING', id) FROM orders WHERE $quiescent::boolean AND status = 'PENDING'

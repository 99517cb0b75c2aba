-- The inventory's own invariants (run by the invariant checker of the tests and the benchmark,
-- scripts/lib/checkout-invariants.mjs): one row (kind, message) per violation.
--   per SKU in scope: available + reserved + sold = stocked, nothing negative;
--     sold = Σ reservations of COMMITTED transactions, reserved = Σ of PREPARED ones;
--     at rest ($quiescent) nothing reserved;
--   per PREPARED or COMMITTED transaction in scope: it reserved exactly the order's lines.
WITH stock AS (
  SELECT s.sku, s.available::bigint AS available, s.reserved::bigint AS reserved, s.sold::bigint AS sold,
         s.stocked::bigint AS stocked,
         COALESCE((SELECT sum(r.quantity) FROM inventory_svc.reservations r
                     JOIN inventory_svc.tpc_participant_transactions t ON t.transaction_id = r.transaction_id
                    WHERE r.sku = s.sku AND t.state = 'COMMITTED'), 0) AS committed,
         COALESCE((SELECT sum(r.quantity) FROM inventory_svc.reservations r
                     JOIN inventory_svc.tpc_participant_transactions t ON t.transaction_id = r.transaction_id
                    WHERE r.sku = s.sku AND t.state = 'PREPARED'), 0) AS prepared
    FROM inventory_svc.stock s
   WHERE $resources::text[] IS NULL OR s.sku = ANY($resources::text[])
), figures AS (
  SELECT *, format('available=%s reserved=%s sold=%s stocked=%s', available, reserved, sold, stocked) AS fig FROM stock
), taken AS (
  SELECT t.transaction_id,
         (SELECT COALESCE(jsonb_agg(jsonb_build_object('sku', r.sku, 'quantity', r.quantity) ORDER BY r.sku), '[]')
            FROM inventory_svc.reservations r WHERE r.transaction_id = t.transaction_id) AS reserved,
         (SELECT COALESCE(jsonb_agg(jsonb_build_object('sku', i.sku, 'quantity', i.quantity) ORDER BY i.sku), '[]')
            FROM order_svc.order_items i WHERE i.order_id = t.transaction_id) AS ordered
    FROM inventory_svc.tpc_participant_transactions t
    JOIN order_svc.orders o ON o.id = t.transaction_id
   WHERE t.state IN ('PREPARED', 'COMMITTED')
     AND ($transactions::text[] IS NULL OR t.transaction_id::text = ANY($transactions::text[]))
)
SELECT 'safety' AS kind, format('stock %s: a negative figure (%s)', sku, fig) AS message
  FROM figures WHERE available < 0 OR reserved < 0 OR sold < 0
UNION ALL
SELECT 'safety', format('stock %s: available+reserved+sold = %s ≠ stocked %s (%s)', sku, available + reserved + sold, stocked, fig)
  FROM figures WHERE available + reserved + sold <> stocked
UNION ALL
SELECT 'safety', format('stock %s: sold %s ≠ %s reserved by COMMITTED inventory transactions', sku, sold, committed)
  FROM figures WHERE sold <> committed
UNION ALL
SELECT 'safety', format('stock %s: reserved %s ≠ %s reserved by PREPARED inventory transactions', sku, reserved, prepared)
  FROM figures WHERE reserved <> prepared
UNION ALL
SELECT 'liveness', format('stock %s: %s still reserved', sku, reserved)
  FROM figures WHERE $quiescent::boolean AND reserved <> 0
UNION ALL
SELECT 'safety', format('order %s: inventory reserved %s but the order has %s', transaction_id, reserved, ordered)
  FROM taken WHERE reserved <> ordered

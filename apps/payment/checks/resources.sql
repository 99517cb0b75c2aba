-- The accounts each checkout transaction touched: the customer it holds money of (see scripts/lib/checkout-invariants.mjs).
SELECT transaction_id, customer_id AS resource FROM payment_svc.holds

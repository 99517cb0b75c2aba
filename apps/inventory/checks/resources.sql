-- The stock each checkout transaction touched: the SKUs it reserved (see scripts/lib/checkout-invariants.mjs).
SELECT transaction_id, sku AS resource FROM inventory_svc.reservations

// The design's invariants, checked over everything this run seeded and ordered, once every order
// is decided and acknowledged. From the three schemas in one snapshot when we have the database;
// through the REST API (a subset) when we only have the services' URLs.
import { inParallel } from './driver.mjs';

const MAX_EXAMPLES = 5;

class Checks {
  constructor() {
    this.list = [];
  }

  /** Records a check; `violations` are messages (only the first few are kept). */
  add(name, violations) {
    this.list.push({
      name,
      ok: violations.length === 0,
      count: violations.length,
      examples: violations.slice(0, MAX_EXAMPLES),
    });
  }

  get ok() {
    return this.list.every((c) => c.ok);
  }
}

const big = (v) => BigInt(v ?? 0);

/**
 * From the database, in one REPEATABLE READ snapshot of all three schemas. `plan` is what was
 * seeded; `prefix` names the run's SKUs, customers and Idempotency-Keys; `shedKeys` are the
 * Idempotency-Keys of the POSTs answered 503.
 */
export async function checkInvariantsInDatabase(client, { prefix, plan, acceptedIds, shedKeys = [], deadLettered }) {
  const checks = new Checks();
  const like = `${prefix}-%`;
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    const { rows: groups } = await client.query(
      `SELECT o.status, t.state AS coordinator, i.state AS inventory, p.state AS payment,
              t.completed_at IS NOT NULL AS acked, count(*)::int AS n, min(o.id::text) AS example
         FROM order_svc.orders o
         LEFT JOIN order_svc.tpc_transactions t ON t.id = o.id
         LEFT JOIN inventory_svc.tpc_participant_transactions i ON i.transaction_id = o.id
         LEFT JOIN payment_svc.tpc_participant_transactions p ON p.transaction_id = o.id
        WHERE o.idempotency_key LIKE $1
        GROUP BY 1, 2, 3, 4, 5`,
      [like],
    );
    const describe = (g) =>
      `${g.n} order(s) ${g.status} with coordinator ${g.coordinator ?? 'none'}, inventory ${g.inventory ?? 'none'}, ` +
      `payment ${g.payment ?? 'none'}${g.acked ? '' : ', not acknowledged'} (e.g. ${g.example})`;
    checks.add('every order decided (none PENDING)', groups.filter((g) => g.status === 'PENDING').map(describe));
    checks.add(
      'every decision acknowledged by both participants',
      groups.filter((g) => g.status !== 'PENDING' && !g.acked).map(describe),
    );
    checks.add(
      'CONFIRMED ⇔ coordinator, inventory and payment all COMMITTED',
      groups
        .filter((g) => {
          const allCommitted =
            g.coordinator === 'COMMITTED' && g.inventory === 'COMMITTED' && g.payment === 'COMMITTED';
          return (g.status === 'CONFIRMED') !== allCommitted;
        })
        .map(describe),
    );
    checks.add(
      'CANCELLED ⇒ coordinator ABORTED and no participant COMMITTED',
      groups
        .filter(
          (g) =>
            g.status === 'CANCELLED' &&
            (g.coordinator !== 'ABORTED' || g.inventory === 'COMMITTED' || g.payment === 'COMMITTED'),
        )
        .map(describe),
    );
    checks.add(
      'no participant transaction left PREPARED (in doubt)',
      groups.filter((g) => g.inventory === 'PREPARED' || g.payment === 'PREPARED').map(describe),
    );

    const { rows: stock } = await client.query(
      `WITH sold AS (
         SELECT i.sku, sum(i.quantity) AS q FROM order_svc.order_items i JOIN order_svc.orders o ON o.id = i.order_id
          WHERE o.status = 'CONFIRMED' AND o.idempotency_key LIKE $1 GROUP BY i.sku)
       SELECT s.sku, s.available, s.reserved, s.sold, s.stocked, COALESCE(sold.q, 0) AS confirmed
         FROM inventory_svc.stock s LEFT JOIN sold USING (sku) WHERE s.sku LIKE $1`,
      [like],
    );
    const seededStock = new Map(plan.stock.map((s) => [s.sku, BigInt(s.quantity)]));
    const conserved = [];
    const settled = [];
    for (const r of stock) {
      const [a, res, s, st] = [r.available, r.reserved, r.sold, r.stocked].map(big);
      const fig = `available ${a}, reserved ${res}, sold ${s}, stocked ${st}`;
      if (a < 0n || res < 0n || s < 0n) conserved.push(`${r.sku}: negative (${fig})`);
      if (a + res + s !== st) conserved.push(`${r.sku}: available+reserved+sold ≠ stocked (${fig})`);
      if (st !== seededStock.get(r.sku)) conserved.push(`${r.sku}: stocked ${st}, seeded ${seededStock.get(r.sku)}`);
      if (s !== big(r.confirmed)) settled.push(`${r.sku}: sold ${s} ≠ ${r.confirmed} in CONFIRMED orders`);
      if (res !== 0n) settled.push(`${r.sku}: ${res} still reserved`);
    }
    if (stock.length !== seededStock.size) conserved.push(`${stock.length} SKUs in stock, ${seededStock.size} seeded`);
    checks.add('stock: available + reserved + sold = stocked (as seeded), nothing negative', conserved);
    checks.add('stock: sold = quantities of CONFIRMED orders, nothing left reserved', settled);

    const { rows: money } = await client.query(
      `WITH paid AS (
         SELECT customer_id, sum(total) AS t FROM order_svc.orders
          WHERE status = 'CONFIRMED' AND idempotency_key LIKE $1 GROUP BY customer_id)
       SELECT a.customer_id, a.balance, a.held, a.captured, a.deposited, COALESCE(paid.t, 0) AS confirmed
         FROM payment_svc.accounts a LEFT JOIN paid USING (customer_id) WHERE a.customer_id LIKE $1`,
      [like],
    );
    const seededMoney = new Map(plan.accounts.map((a) => [a.customerId, BigInt(a.balance)]));
    const balanced = [];
    const captured = [];
    for (const r of money) {
      const [b, h, c, d] = [r.balance, r.held, r.captured, r.deposited].map(big);
      const fig = `balance ${b}, held ${h}, captured ${c}, deposited ${d}`;
      if (b < 0n || h < 0n || c < 0n) balanced.push(`${r.customer_id}: negative (${fig})`);
      if (b + h + c !== d) balanced.push(`${r.customer_id}: balance+held+captured ≠ deposited (${fig})`);
      if (d !== seededMoney.get(r.customer_id))
        balanced.push(`${r.customer_id}: deposited ${d}, seeded ${seededMoney.get(r.customer_id)}`);
      if (c !== big(r.confirmed)) captured.push(`${r.customer_id}: captured ${c} ≠ ${r.confirmed} in CONFIRMED orders`);
      if (h !== 0n) captured.push(`${r.customer_id}: ${h} still held`);
    }
    if (money.length !== seededMoney.size) balanced.push(`${money.length} accounts, ${seededMoney.size} seeded`);
    checks.add('money: balance + held + captured = deposited (as seeded), nothing negative', balanced);
    checks.add('money: captured = totals of CONFIRMED orders, nothing left held', captured);

    const { rows: found } = await client.query(
      `SELECT count(*)::int AS n FROM order_svc.orders WHERE id = ANY($1::uuid[])`,
      [acceptedIds],
    );
    checks.add(
      'every accepted order (2xx answer) exists',
      found[0].n === acceptedIds.length ? [] : [`${acceptedIds.length - found[0].n} accepted order id(s) not found`],
    );
    // Admission control answers 503 before anything is written: no order may carry such a key.
    const { rows: written } = await client.query(
      `SELECT idempotency_key AS key, id, status FROM order_svc.orders WHERE idempotency_key = ANY($1::text[])`,
      [shedKeys],
    );
    checks.add(
      'nothing written for a shed request (no order with the Idempotency-Key of a 503)',
      written.map((r) => `${r.key}: answered 503, yet order ${r.id} exists (${r.status})`),
    );
  } finally {
    await client.query('COMMIT').catch(() => undefined);
  }
  addDeadLetterCheck(checks, deadLettered);
  return checks;
}

/**
 * Through the REST API only (no database URL): per SKU nothing reserved and available + sold =
 * seeded; per account nothing held and balance + captured = seeded; sold and captured match the
 * CONFIRMED orders as GET /orders/:id reports them.
 */
export async function checkInvariantsOverRest(client, urls, { plan, authorizations, orders, deadLettered }) {
  const checks = new Checks();
  checks.add(
    'every order decided (none PENDING)',
    orders.filter((o) => o.status === 'PENDING').map((o) => `order ${o.id} PENDING`),
  );
  const soldBySku = new Map();
  const paidBy = new Map();
  for (const o of orders.filter((x) => x.status === 'CONFIRMED')) {
    for (const item of o.items) soldBySku.set(item.sku, (soldBySku.get(item.sku) ?? 0) + item.quantity);
    paidBy.set(o.customerId, (paidBy.get(o.customerId) ?? 0) + o.total);
  }
  const stockProblems = [];
  await inParallel(plan.stock, 16, async (s) => {
    const res = await client.request('GET', `${urls.inventory[0]}/stock/${s.sku}`);
    if (res.status !== 200) return stockProblems.push(`GET /stock/${s.sku} → ${res.status}`);
    const v = JSON.parse(res.text);
    if (v.reserved !== 0) stockProblems.push(`${s.sku}: ${v.reserved} still reserved`);
    if (v.available + v.reserved + v.sold !== s.quantity)
      stockProblems.push(
        `${s.sku}: available+reserved+sold = ${v.available + v.reserved + v.sold}, seeded ${s.quantity}`,
      );
    if (v.sold !== (soldBySku.get(s.sku) ?? 0))
      stockProblems.push(`${s.sku}: sold ${v.sold} ≠ ${soldBySku.get(s.sku) ?? 0} in CONFIRMED orders`);
  });
  checks.add('stock: conserved, sold = CONFIRMED orders, nothing reserved (REST)', stockProblems);
  const moneyProblems = [];
  await inParallel(plan.accounts, 16, async (a) => {
    const headers = { authorization: authorizations.get(a.customerId) };
    const res = await client.request('GET', `${urls.payment[0]}/accounts/${a.customerId}`, { headers });
    if (res.status !== 200) return moneyProblems.push(`GET /accounts/${a.customerId} → ${res.status}`);
    const v = JSON.parse(res.text);
    if (v.held !== 0) moneyProblems.push(`${a.customerId}: ${v.held} still held`);
    if (v.balance + v.held + v.captured !== a.balance)
      moneyProblems.push(`${a.customerId}: balance+held+captured ≠ seeded ${a.balance}`);
    if (v.captured !== (paidBy.get(a.customerId) ?? 0))
      moneyProblems.push(`${a.customerId}: captured ${v.captured} ≠ CONFIRMED totals ${paidBy.get(a.customerId) ?? 0}`);
  });
  checks.add('money: conserved, captured = CONFIRMED orders, nothing held (REST)', moneyProblems);
  addDeadLetterCheck(checks, deadLettered);
  return checks;
}

function addDeadLetterCheck(checks, deadLettered) {
  if (deadLettered == null) return; // no management API: not checked
  checks.add(
    'no message dead-lettered',
    Object.entries(deadLettered)
      .filter(([, n]) => n > 0)
      .map(([queue, n]) => `${n} message(s) in ${queue}`),
  );
}

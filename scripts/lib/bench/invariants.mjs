// The design's invariants, checked over everything this run seeded and ordered, once every order
// is decided and acknowledged. From the database (one snapshot) when we have it: the checks the
// tests run, over every participant (scripts/lib/checkout-invariants.mjs: the generic state
// checks, and each service's own in apps/<svc>/checks/); through the REST API (a subset) when we
// only have the services' URLs.
import { COORDINATOR, PARTICIPANT_NAMES } from '../config.mjs';
import { findViolations, GENERIC_CHECKS, serviceChecks } from '../checkout-invariants.mjs';
import { inParallel } from './driver.mjs';

const MAX_EXAMPLES = 5;

class Checks {
  constructor() {
    this.list = [];
    /** What could not be checked, and why (for the report's notes). */
    this.notes = [];
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
 * From the database, in one REPEATABLE READ snapshot of every schema. `plan` is what was
 * seeded; `prefix` names the run's SKUs, customers and Idempotency-Keys; `shedKeys` are the
 * Idempotency-Keys of the POSTs answered 503.
 */
export async function checkInvariantsInDatabase(client, { prefix, plan, acceptedIds, shedKeys = [], deadLettered }) {
  const checks = new Checks();
  const like = `${prefix}-%`;
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    const { rows: orders } = await client.query(
      `SELECT id::text AS id FROM order_svc.orders WHERE idempotency_key LIKE $1`,
      [like],
    );
    const found = await findViolations(client, {
      coordinator: COORDINATOR,
      participants: PARTICIPANT_NAMES,
      transactionIds: orders.map((o) => o.id),
      quiescent: true,
    });
    // Every check by name, the ones that hold too; a service's own ones under its file's name.
    const names = [
      ...Object.values(GENERIC_CHECKS),
      ...[COORDINATOR, ...PARTICIPANT_NAMES].flatMap((name) => {
        const own = serviceChecks(name);
        return own ? [`${name}: ${own.file}`] : [];
      }),
    ];
    for (const name of names)
      checks.add(
        name,
        found.filter((v) => v.check === name).map((v) => v.message),
      );
    await checkSeeded(client, checks, plan, like);

    const { rows: accepted } = await client.query(
      `SELECT count(*)::int AS n FROM order_svc.orders WHERE id = ANY($1::uuid[])`,
      [acceptedIds],
    );
    checks.add(
      'every accepted order (2xx answer) exists',
      accepted[0].n === acceptedIds.length
        ? []
        : [`${acceptedIds.length - accepted[0].n} accepted order id(s) not found`],
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
 * The workload's own figures: every SKU and account the run seeded (the inventory's and the
 * payment service's data hooks: a product's units stocked, a customer's spend deposited) still
 * holds what was put in, no more, no less.
 */
async function checkSeeded(client, checks, plan, like) {
  const { rows: stock } = await client.query(`SELECT sku, stocked FROM inventory_svc.stock WHERE sku LIKE $1`, [like]);
  const seededStock = new Map(plan.shop.products.map((p) => [p.sku, BigInt(p.units)]));
  const stocked = stock
    .filter((r) => big(r.stocked) !== seededStock.get(r.sku))
    .map((r) => `${r.sku}: stocked ${r.stocked}, seeded ${seededStock.get(r.sku)}`);
  if (stock.length !== seededStock.size) stocked.push(`${stock.length} SKUs in stock, ${seededStock.size} seeded`);
  checks.add('stock: stocked as seeded, for every seeded SKU', stocked);

  const { rows: money } = await client.query(
    `SELECT customer_id, deposited FROM payment_svc.accounts WHERE customer_id LIKE $1`,
    [like],
  );
  const seededMoney = new Map(plan.shop.customers.map((c) => [c.customerId, BigInt(c.spend)]));
  const deposited = money
    .filter((r) => big(r.deposited) !== seededMoney.get(r.customer_id))
    .map((r) => `${r.customer_id}: deposited ${r.deposited}, seeded ${seededMoney.get(r.customer_id)}`);
  if (money.length !== seededMoney.size) deposited.push(`${money.length} accounts, ${seededMoney.size} seeded`);
  checks.add('money: deposited as seeded, for every seeded account', deposited);
}

/**
 * Through the REST API only (no database URL): every order decided, and what a participant's
 * REST API shows of its resources (REST_CHECKS: the inventory's stock, the payment service's
 * accounts). A participant without one is named in the notes: not checked, rather than ignored.
 */
export async function checkInvariantsOverRest(client, urls, { plan, authorizations, orders, deadLettered }) {
  const checks = new Checks();
  checks.add(
    'every order decided (none PENDING)',
    orders.filter((o) => o.status === 'PENDING').map((o) => `order ${o.id} PENDING`),
  );
  const confirmed = orders.filter((o) => o.status === 'CONFIRMED');
  for (const participant of PARTICIPANT_NAMES) {
    const check = REST_CHECKS[participant];
    if (!check) {
      checks.notes.push(`no database URL: ${participant} not checked (it has no REST check in bench/invariants.mjs)`);
      continue;
    }
    const [name, problems] = await check(client, urls[participant][0], { plan, authorizations, confirmed });
    checks.add(name, problems);
  }
  addDeadLetterCheck(checks, deadLettered);
  return checks;
}

/** Per participant: [check name, problems] from its REST API, against the seed and the CONFIRMED orders. */
const REST_CHECKS = {
  async inventory(client, url, { plan, confirmed }) {
    const soldBySku = new Map();
    for (const o of confirmed)
      for (const item of o.items) soldBySku.set(item.sku, (soldBySku.get(item.sku) ?? 0) + item.quantity);
    const problems = [];
    await inParallel(plan.shop.products, 16, async (p) => {
      const res = await client.request('GET', `${url}/stock/${p.sku}`);
      if (res.status !== 200) return problems.push(`GET /stock/${p.sku} → ${res.status}`);
      const v = JSON.parse(res.text);
      if (v.reserved !== 0) problems.push(`${p.sku}: ${v.reserved} still reserved`);
      if (v.available + v.reserved + v.sold !== p.units)
        problems.push(`${p.sku}: available+reserved+sold = ${v.available + v.reserved + v.sold}, seeded ${p.units}`);
      if (v.sold !== (soldBySku.get(p.sku) ?? 0))
        problems.push(`${p.sku}: sold ${v.sold} ≠ ${soldBySku.get(p.sku) ?? 0} in CONFIRMED orders`);
    });
    return ['stock: conserved, sold = CONFIRMED orders, nothing reserved (REST)', problems];
  },

  async payment(client, url, { plan, authorizations, confirmed }) {
    const paidBy = new Map();
    for (const o of confirmed) paidBy.set(o.customerId, (paidBy.get(o.customerId) ?? 0) + o.total);
    const problems = [];
    await inParallel(plan.shop.customers, 16, async (c) => {
      const headers = { authorization: authorizations.get(c.customerId) };
      const res = await client.request('GET', `${url}/accounts/${c.customerId}`, { headers });
      if (res.status !== 200) return problems.push(`GET /accounts/${c.customerId} → ${res.status}`);
      const v = JSON.parse(res.text);
      if (v.held !== 0) problems.push(`${c.customerId}: ${v.held} still held`);
      if (v.balance + v.held + v.captured !== c.spend)
        problems.push(`${c.customerId}: balance+held+captured ≠ seeded ${c.spend}`);
      if (v.captured !== (paidBy.get(c.customerId) ?? 0))
        problems.push(`${c.customerId}: captured ${v.captured} ≠ CONFIRMED totals ${paidBy.get(c.customerId) ?? 0}`);
    });
    return ['money: conserved, captured = CONFIRMED orders, nothing held (REST)', problems];
  },
};

function addDeadLetterCheck(checks, deadLettered) {
  if (deadLettered == null) return; // no management API: not checked
  checks.add(
    'no message dead-lettered',
    Object.entries(deadLettered)
      .filter(([, n]) => n > 0)
      .map(([queue, n]) => `${n} message(s) in ${queue}`),
  );
}

import { randomUUID } from 'node:crypto';
import { sql } from '../support/db';
import type { HttpResponse, OrderView } from '../support/http';
import { runIds } from '../support/ids';
import { expectInvariants, waitUntilDecided, waitUntilQuiescent } from '../support/invariants';
import { useShop } from '../support/shop';
import { INVALID_TOKENS } from '../support/tokens';

/**
 * Customers authenticate: POST /orders, GET /orders/:id and GET /accounts/:customerId take a
 * customer token (a JWT whose `sub` is the customer); without a valid one they answer 401 with a
 * Bearer challenge and write nothing. A customer sees only their own orders and account: someone
 * else's answers exactly like one that does not exist. An Idempotency-Key is the customer's, and
 * is free again after its retention.
 */

const ids = runIds('auth');
const DECIDE_MS = 20_000;
const sku = ids.sku('item');
const alice = ids.customer('alice');
const bob = ids.customer('bob');
const order = (customerId?: string) => ({ ...(customerId ? { customerId } : {}), items: [{ sku, quantity: 1 }] });

const shop = useShop();

beforeAll(async () => {
  await shop.api.putProduct(sku, 700);
  await shop.api.putStock(sku, 100);
  await shop.api.putAccount(alice, 100_000);
  await shop.api.putAccount(bob, 100_000);
});

/** What a refused request must not have written: the two customers' orders, and their prepares. */
async function written() {
  const [row] = await sql<{ orders: number; prepares: number }>(
    `SELECT (SELECT count(*) FROM order_svc.orders WHERE customer_id = ANY($1))::int AS orders,
            (SELECT count(*) FROM order_svc.outbox b JOIN order_svc.orders o ON o.id::text = b.body->>'transactionId'
              WHERE o.customer_id = ANY($1))::int AS prepares`,
    [[alice, bob]],
  );
  return row;
}

function expectUnauthorized(response: HttpResponse, challenge: RegExp = /^Bearer realm="shop"/) {
  expect({ status: response.status, body: response.text }).toMatchObject({ status: 401 });
  expect(response.headers.get('www-authenticate')).toMatch(challenge);
  expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(response.json).toMatchObject({ type: 'about:blank', title: 'Unauthorized', status: 401 });
}

const placeAs = (authorization: string | undefined, body: unknown, headers: Record<string, string> = {}) =>
  shop.api.order.post<OrderView>('/orders', {
    body,
    headers: { ...headers, ...(authorization ? { authorization } : {}) },
  });

describe('customer authentication', () => {
  it('POST /orders without a token: 401 with a Bearer challenge, nothing written', async () => {
    const before = await written();
    expectUnauthorized(await placeAs(undefined, order(alice)));
    expectUnauthorized(await placeAs('Bearer dev-admin-token', order(alice)), /error="invalid_token"/);
    expect(await written()).toEqual(before);
  });

  it.each(INVALID_TOKENS.map((t) => [t.name, t] as const))(
    'a token %s: 401 on every customer route, nothing written',
    async (_name, { make, why }) => {
      const authorization = `Bearer ${await make(alice)}`;
      const before = await written();
      const placed = await placeAs(authorization, order(alice));
      expectUnauthorized(placed, /^Bearer realm="shop", error="invalid_token", error_description="/);
      expect((placed.json as unknown as { detail: string }).detail).toMatch(why);
      expectUnauthorized(await shop.api.order.get(`/orders/${randomUUID()}`, { headers: { authorization } }));
      expectUnauthorized(await shop.api.payment.get(`/accounts/${alice}`, { headers: { authorization } }));
      expect(await written()).toEqual(before);
    },
  );

  it("a body customerId that is not the token's: 403, nothing written", async () => {
    const before = await written();
    const response = await shop.api.placeOrder(order(bob), { customer: alice, idempotencyKey: randomUUID() });
    expect({ status: response.status, body: response.text }).toMatchObject({ status: 403 });
    expect(response.json).toMatchObject({ title: 'Forbidden', status: 403 });
    expect(await written()).toEqual(before);
  });

  it('the customer is the token’s: a body without customerId places an order for it', async () => {
    const response = await shop.api.placeOrder(order(), { customer: bob });
    expect(response.status).toBe(202);
    expect(response.json.customerId).toBe(bob);
    await waitUntilDecided([response.json.id], DECIDE_MS);
    expect((await shop.api.getOrder(response.json.id, bob)).json).toMatchObject({ status: 'CONFIRMED' });
  });

  it('the development service hands out tokens (POST /dev/tokens) that its routes accept', async () => {
    const issued = await shop.api.order.post<{ token: string }>('/dev/tokens', { body: { customerId: alice } });
    expect(issued.status).toBe(200);
    const response = await placeAs(`Bearer ${issued.json.token}`, order(), { prefer: 'wait=10' });
    expect(response.status).toBe(200);
    expect(response.json).toMatchObject({ customerId: alice, status: 'CONFIRMED' });
  });
});

describe('a customer sees only their own', () => {
  /** A 404 as the client sees it, with the id asked for taken out. */
  const notFound = (response: HttpResponse, asked: string) => ({
    status: response.status,
    contentType: response.headers.get('content-type'),
    body: response.text.replaceAll(asked, '<asked>'),
  });

  it("bob reading alice's order gets the 404 of an order that does not exist", async () => {
    const placed = await shop.api.placeAccepted(alice, order().items);
    expect((await shop.api.getOrder(placed.id, alice)).status).toBe(200);
    const missing = randomUUID();
    const hers = await shop.api.getOrder(placed.id, bob);
    const none = await shop.api.getOrder(missing, bob);
    expect(hers.status).toBe(404);
    expect(notFound(hers, placed.id)).toEqual(notFound(none, missing));
    // Prefer: wait answers the same.
    const waited = await shop.api.order.get(`/orders/${placed.id}`, {
      customer: bob,
      headers: { prefer: 'wait=1' },
    });
    expect(notFound(waited, placed.id)).toEqual(notFound(none, missing));
    await waitUntilDecided([placed.id], DECIDE_MS);
  });

  it("bob reading alice's account gets the 404 of an account that does not exist", async () => {
    expect((await shop.api.payment.get(`/accounts/${alice}`, { customer: alice })).status).toBe(200);
    const nobody = ids.customer('nobody');
    const hers = await shop.api.payment.get(`/accounts/${alice}`, { customer: bob });
    const none = await shop.api.payment.get(`/accounts/${nobody}`, { customer: bob });
    expect(hers.status).toBe(404);
    expect(notFound(hers, alice)).toEqual(notFound(none, nobody));
  });
});

/** The orders decided, acknowledged, and every invariant holding for them. */
async function settled(orderIds: string[]) {
  await waitUntilDecided(orderIds, DECIDE_MS);
  await waitUntilQuiescent({ orderIds }, DECIDE_MS);
  await expectInvariants({ orderIds }, { quiescent: true });
}

describe('Idempotency-Key, per customer', () => {
  const keyed = (key: string) =>
    sql<{ id: string; customer_id: string }>(
      `SELECT id::text AS id, customer_id FROM order_svc.orders WHERE idempotency_key = $1 ORDER BY customer_id`,
      [key],
    );

  it('two customers using the same key get two orders; each one reusing it gets their own back', async () => {
    const key = `shared-${randomUUID()}`;
    const hers = await shop.api.placeOrder(order(alice), { idempotencyKey: key });
    const his = await shop.api.placeOrder(order(bob), { idempotencyKey: key });
    expect([hers.status, his.status]).toEqual([202, 202]);
    expect(his.json.id).not.toBe(hers.json.id);
    expect(his.json.customerId).toBe(bob);
    expect(await keyed(key)).toEqual(
      [
        { id: hers.json.id, customer_id: alice },
        { id: his.json.id, customer_id: bob },
      ].sort((a, b) => a.customer_id.localeCompare(b.customer_id)),
    );
    // The same customer again: a replay of their own order; another body: 422.
    const again = await shop.api.placeOrder(order(bob), { idempotencyKey: key });
    expect([again.status, again.json.id]).toEqual([expect.any(Number), his.json.id]);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    const other = await shop.api.placeOrder(
      { customerId: bob, items: [{ sku, quantity: 2 }] },
      { idempotencyKey: key },
    );
    expect(other.status).toBe(422);
    await settled([hers.json.id, his.json.id]);
  });

  it('a key past its retention (24 h by default) is free again: the same request is a new order', async () => {
    const key = `old-${randomUUID()}`;
    const first = await shop.api.placeOrder(order(alice), { idempotencyKey: key });
    expect(first.status).toBe(202);
    await waitUntilDecided([first.json.id], DECIDE_MS);
    // A day and an hour pass (for this order).
    await sql(`UPDATE order_svc.orders SET created_at = created_at - interval '25 hours' WHERE id = $1`, [
      first.json.id,
    ]);
    const later = await shop.api.placeOrder(order(alice), { idempotencyKey: key });
    expect(later.status).toBe(202);
    expect(later.json.id).not.toBe(first.json.id);
    expect(later.headers.get('idempotent-replayed')).toBeNull();
    expect(await keyed(key)).toEqual([{ id: later.json.id, customer_id: alice }]);
    await settled([first.json.id, later.json.id]);
  });
});

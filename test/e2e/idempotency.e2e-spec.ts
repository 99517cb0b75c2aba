import { randomUUID } from 'node:crypto';
import { PARTICIPANTS } from '@shop/contracts';
import { outboxOf } from '../support/broker';
import { sql } from '../support/db';
import { runIds } from '../support/ids';
import { expectInvariants, waitUntilDecided, waitUntilQuiescent } from '../support/invariants';
import { useShop } from '../support/shop';

/**
 * Idempotency-Key: a client retrying POST /orders (even many times at once) gets one order, and
 * a key reused for a different request is refused without writing anything.
 */

const ids = runIds('idem');
const DECIDE_MS = 20_000;

const sku = ids.sku('item');
const buyer = ids.customer('buyer');

const shop = useShop();

beforeAll(async () => {
  await shop.api.putProduct(sku, 900);
  await shop.api.putStock(sku, 100);
  await shop.api.putAccount(buyer, 1_000_000);
});

async function ordersWithKey(key: string) {
  return sql<{ id: string; customer_id: string; total: string }>(
    `SELECT id::text AS id, customer_id, total::text AS total FROM order_svc.orders WHERE idempotency_key = $1`,
    [key],
  );
}

async function itemsOf(orderId: string) {
  return sql<{ sku: string; quantity: number }>(
    `SELECT sku, quantity FROM order_svc.order_items WHERE order_id = $1 ORDER BY sku`,
    [orderId],
  );
}

describe('idempotency', () => {
  it('20 concurrent POSTs with one key create exactly one order, and all answer with its id', async () => {
    const key = `idem-${randomUUID()}`;
    const body = { customerId: buyer, items: [{ sku, quantity: 2 }] };
    const before = await shop.api.stock(sku);

    const responses = await Promise.all(
      Array.from({ length: 20 }, () => shop.api.placeOrder(body, { idempotencyKey: key })),
    );

    for (const r of responses) expect([200, 202]).toContain(r.status);
    const orderIds = new Set(responses.map((r) => r.json.id));
    expect(orderIds.size).toBe(1);
    const [orderId] = [...orderIds];
    // One request created it; the other 19 were replays and say so.
    const replayed = responses.map((r) => r.headers.get('idempotent-replayed'));
    expect(replayed.filter((h) => h === 'true')).toHaveLength(19);
    expect(replayed.filter((h) => h === null)).toHaveLength(1);
    for (const r of responses) {
      expect(r.json).toMatchObject({ id: orderId, customerId: buyer, total: 1800 });
      expect(r.headers.get('location')).toBe(`/orders/${orderId}`);
    }

    // The database holds one order, one line, and (once decided: payment is asked first, the
    // others after its yes) one prepare per participant.
    expect(await ordersWithKey(key)).toEqual([{ id: orderId, customer_id: buyer, total: '1800' }]);
    expect(await itemsOf(orderId)).toEqual([{ sku, quantity: 2 }]);
    expect((await waitUntilDecided([orderId], DECIDE_MS)).get(orderId)?.status).toBe('CONFIRMED');
    const prepares = (await outboxOf(orderId)).filter((m) => m.type === 'prepare' && m.service === 'order');
    expect(prepares.map((m) => m.routingKey).sort()).toEqual(PARTICIPANTS.map((p) => `${p}.prepare`).sort());
    await waitUntilQuiescent({ orderIds: [orderId] }, DECIDE_MS);
    // Only one order's worth of stock and money moved.
    expect(await shop.api.stock(sku)).toEqual({ ...before, available: before.available - 2, sold: before.sold + 2 });

    // A replay after the decision answers 200 with the decided order.
    const late = await shop.api.placeOrder(body, { idempotencyKey: key });
    expect(late.status).toBe(200);
    expect(late.headers.get('idempotent-replayed')).toBe('true');
    expect(late.json).toMatchObject({ id: orderId, status: 'CONFIRMED' });
    expect(await ordersWithKey(key)).toHaveLength(1);
    await expectInvariants({ orderIds: [orderId] }, { quiescent: true });
  });

  it('the same key with a different body is refused with 422 and writes nothing', async () => {
    const key = `idem-${randomUUID()}`;
    const original = { customerId: buyer, items: [{ sku, quantity: 1 }] };
    const first = await shop.api.placeOrder(original, { idempotencyKey: key });
    expect(first.status).toBe(202);
    const orderId = first.json.id;
    await waitUntilDecided([orderId], DECIDE_MS);
    await waitUntilQuiescent({ orderIds: [orderId] }, DECIDE_MS);
    const outboxBefore = await outboxOf(orderId);

    // (Another customer's request with this key is theirs: see the auth suite.)
    const variants = [
      { customerId: buyer, items: [{ sku, quantity: 2 }] },
      { items: [{ sku, quantity: 2 }] },
      {
        customerId: buyer,
        items: [
          { sku, quantity: 1 },
          { sku: ids.sku('other'), quantity: 1 },
        ],
      },
    ];
    for (const variant of variants) {
      const response = await shop.api.placeOrder(variant, { idempotencyKey: key, customer: buyer });
      expect({ variant, status: response.status }).toEqual({ variant, status: 422 });
      expect(response.isJson).toBe(true);
      expect(response.json).toMatchObject({ status: 422, title: expect.any(String) });
    }

    expect(await ordersWithKey(key)).toEqual([{ id: orderId, customer_id: buyer, total: '900' }]);
    expect(await itemsOf(orderId)).toEqual([{ sku, quantity: 1 }]);
    expect((await outboxOf(orderId)).map((m) => m.messageId)).toEqual(outboxBefore.map((m) => m.messageId));

    // The original request still replays.
    const replay = await shop.api.placeOrder(original, { idempotencyKey: key });
    expect(replay.status).toBe(200);
    expect(replay.json.id).toBe(orderId);
  });

  it('a key whose request was refused (422, nothing stored) is still free for the corrected request', async () => {
    const key = `idem-${randomUUID()}`;
    const refused = await shop.api.placeOrder(
      { customerId: buyer, items: [{ sku: ids.sku('unpriced'), quantity: 1 }] },
      { idempotencyKey: key },
    );
    expect(refused.status).toBe(422);
    expect(await ordersWithKey(key)).toEqual([]);
    const accepted = await shop.api.placeOrder(
      { customerId: buyer, items: [{ sku, quantity: 1 }] },
      { idempotencyKey: key },
    );
    expect(accepted.status).toBe(202);
    expect(accepted.headers.get('idempotent-replayed')).toBeNull();
    expect(await ordersWithKey(key)).toHaveLength(1);
    await waitUntilDecided([accepted.json.id], DECIDE_MS);
    await waitUntilQuiescent({ orderIds: [accepted.json.id] }, DECIDE_MS);
  });

  it('different keys with the same body are different orders (the key deduplicates, not the body)', async () => {
    const body = { customerId: buyer, items: [{ sku, quantity: 1 }] };
    const a = await shop.api.placeOrder(body, { idempotencyKey: `idem-${randomUUID()}` });
    const b = await shop.api.placeOrder(body, { idempotencyKey: `idem-${randomUUID()}` });
    expect([a.status, b.status]).toEqual([202, 202]);
    expect(a.json.id).not.toBe(b.json.id);
    expect(a.headers.get('idempotent-replayed')).toBeNull();
    expect(b.headers.get('idempotent-replayed')).toBeNull();
    await waitUntilDecided([a.json.id, b.json.id], DECIDE_MS);
    await waitUntilQuiescent({ orderIds: [a.json.id, b.json.id] }, DECIDE_MS);
    await expectInvariants({ orderIds: [a.json.id, b.json.id] }, { quiescent: true });
  });
});

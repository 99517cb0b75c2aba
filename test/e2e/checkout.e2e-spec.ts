import { sql } from '../support/db';
import { mapLimit } from '../support/http';
import { runIds } from '../support/ids';
import { expectInvariants, waitUntilDecided, waitUntilQuiescent } from '../support/invariants';
import { SERVICE_NAMES } from '../support/services';
import { useShop } from '../support/shop';

/**
 * The checkout through the real services: one order placed over REST travels prepare → vote →
 * decision → ack over RabbitMQ, and the three schemas end up agreeing. Each refusal reason is
 * provoked for real and must leave nothing reserved or held.
 */

const ids = runIds('checkout');
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DECIDE_MS = 20_000;

// The metrics test's buyer places 20 orders back to back, past the default burst of one customer.
const shop = useShop({ env: { order: { CUSTOMER_ORDER_BURST: '50' } } });

/** A product with a price and (unless `stock` is null) a stock row. */
async function product(name: string, unitPrice: number, stock: number | null): Promise<string> {
  const sku = ids.sku(name);
  await shop.api.putProduct(sku, unitPrice);
  if (stock !== null) await shop.api.putStock(sku, stock);
  return sku;
}

async function customer(name: string, balance: number | null): Promise<string> {
  const id = ids.customer(name);
  if (balance !== null) await shop.api.putAccount(id, balance);
  return id;
}

/** Places an order that must be accepted, waits for its decision and for quiescence. */
async function placeAndSettle(customerId: string, items: Array<{ sku: string; quantity: number }>) {
  const placed = await shop.api.placeAccepted(customerId, items);
  const decided = (await waitUntilDecided([placed.id], DECIDE_MS)).get(placed.id)!;
  await waitUntilQuiescent({ orderIds: [placed.id] }, DECIDE_MS);
  const view = await shop.api.getOrder(placed.id);
  expect(view.status).toBe(200);
  return { placed, decided, view: view.json };
}

describe('checkout', () => {
  it('confirms an order: 202 with the priced order, then CONFIRMED; stock sold, money captured, nothing held', async () => {
    const sku = await product('happy', 1250, 10);
    const buyer = await customer('happy', 100_000);

    const response = await shop.api.placeOrder({ customerId: buyer, items: [{ sku, quantity: 3 }] });
    expect(response.status).toBe(202);
    const order = response.json;
    expect(order).toMatchObject({
      status: 'PENDING',
      customerId: buyer,
      items: [{ sku, quantity: 3, unitPrice: 1250, lineTotal: 3750 }],
      total: 3750,
    });
    expect(order.id).toMatch(UUID);
    expect(order.currency).toMatch(/^[A-Z]{3}$/);
    expect(Number.isNaN(Date.parse(order.createdAt))).toBe(false);
    expect(response.headers.get('location')).toBe(`/orders/${order.id}`);

    const decided = (await waitUntilDecided([order.id], DECIDE_MS)).get(order.id)!;
    expect(decided).toMatchObject({ status: 'CONFIRMED' });
    await waitUntilQuiescent({ orderIds: [order.id] }, DECIDE_MS);

    const view = await shop.api.getOrder(order.id);
    expect(view.status).toBe(200);
    expect(view.json).toMatchObject({
      id: order.id,
      customerId: buyer,
      status: 'CONFIRMED',
      total: 3750,
      currency: order.currency,
      items: [{ sku, quantity: 3, unitPrice: 1250, lineTotal: 3750 }],
    });
    expect(view.json.reason ?? null).toBeNull();
    expect(Date.parse(view.json.decidedAt ?? '')).toBeGreaterThanOrEqual(Date.parse(order.createdAt));

    expect(await shop.api.stock(sku)).toEqual({ sku, available: 7, reserved: 0, sold: 3 });
    expect(await shop.api.account(buyer)).toEqual({ customerId: buyer, balance: 96_250, held: 0, captured: 3750 });
    await expectInvariants({ orderIds: [order.id] }, { quiescent: true });
  });

  it('prices a multi-line order on the server and commits every line', async () => {
    const a = await product('multi-a', 199, 5);
    const b = await product('multi-b', 2500, 5);
    const buyer = await customer('multi', 10_000);

    const { placed, decided, view } = await placeAndSettle(buyer, [
      { sku: a, quantity: 4 },
      { sku: b, quantity: 2 },
    ]);
    expect(placed.total).toBe(4 * 199 + 2 * 2500);
    expect(decided.status).toBe('CONFIRMED');
    expect(view.items).toEqual(
      expect.arrayContaining([
        { sku: a, quantity: 4, unitPrice: 199, lineTotal: 796 },
        { sku: b, quantity: 2, unitPrice: 2500, lineTotal: 5000 },
      ]),
    );
    expect(view.items).toHaveLength(2);
    expect(await shop.api.stock(a)).toEqual({ sku: a, available: 1, reserved: 0, sold: 4 });
    expect(await shop.api.stock(b)).toEqual({ sku: b, available: 3, reserved: 0, sold: 2 });
    expect(await shop.api.account(buyer)).toEqual({ customerId: buyer, balance: 4204, held: 0, captured: 5796 });
    await expectInvariants({ orderIds: [placed.id] }, { quiescent: true });
  });

  it('confirms an order at every upper limit: 100 lines × 10 000 units × 1 000 000 000 cents (total 10^15)', async () => {
    const PRICE = 1_000_000_000;
    const QTY = 10_000;
    const skus = Array.from({ length: 100 }, (_, i) => ids.sku(`max${String(i).padStart(3, '0')}`));
    await mapLimit(skus, 10, async (sku) => {
      await shop.api.putProduct(sku, PRICE);
      await shop.api.putStock(sku, QTY);
    });
    const total = skus.length * QTY * PRICE;
    expect(total).toBeLessThanOrEqual(Number.MAX_SAFE_INTEGER);
    const buyer = await customer('max', total);

    const { placed, decided } = await placeAndSettle(
      buyer,
      skus.map((sku) => ({ sku, quantity: QTY })),
    );
    expect(placed.total).toBe(total);
    expect(decided.status).toBe('CONFIRMED');
    expect(await shop.api.account(buyer)).toEqual({ customerId: buyer, balance: 0, held: 0, captured: total });
    expect(await shop.api.stock(skus[99])).toEqual({ sku: skus[99], available: 0, reserved: 0, sold: QTY });
    await expectInvariants({ orderIds: [placed.id] }, { quiescent: true });
  });

  it('answers `Prefer: wait=5` with 200 and the decided order', async () => {
    const sku = await product('prefer', 500, 3);
    const buyer = await customer('prefer', 5_000);

    const started = Date.now();
    const response = await shop.api.placeOrder(
      { customerId: buyer, items: [{ sku, quantity: 1 }] },
      { waitSeconds: 5 },
    );
    const elapsed = Date.now() - started;
    expect(response.status).toBe(200);
    expect(response.json).toMatchObject({ customerId: buyer, status: 'CONFIRMED', total: 500 });
    expect(response.headers.get('location')).toBe(`/orders/${response.json.id}`);
    expect(elapsed).toBeLessThan(5_000);
    // What it said is what the database says.
    const [row] = await sql<{ status: string }>(`SELECT status FROM order_svc.orders WHERE id = $1`, [
      response.json.id,
    ]);
    expect(row.status).toBe('CONFIRMED');
    await waitUntilQuiescent({ orderIds: [response.json.id] }, DECIDE_MS);
    await expectInvariants({ orderIds: [response.json.id] }, { quiescent: true });
  });

  it('cancels OUT_OF_STOCK when a line asks for more than is available, and releases the payment hold', async () => {
    const plenty = await product('oos-plenty', 100, 50);
    const scarce = await product('oos-scarce', 100, 2);
    const buyer = await customer('oos', 10_000);

    const { decided, view } = await placeAndSettle(buyer, [
      { sku: plenty, quantity: 5 },
      { sku: scarce, quantity: 3 },
    ]);
    expect(decided).toMatchObject({ status: 'CANCELLED', reason: 'OUT_OF_STOCK' });
    expect(view).toMatchObject({ status: 'CANCELLED', reason: 'OUT_OF_STOCK' });
    // No partial reservation survives: the line that fitted was not kept either.
    expect(await shop.api.stock(plenty)).toEqual({ sku: plenty, available: 50, reserved: 0, sold: 0 });
    expect(await shop.api.stock(scarce)).toEqual({ sku: scarce, available: 2, reserved: 0, sold: 0 });
    expect(await shop.api.account(buyer)).toEqual({ customerId: buyer, balance: 10_000, held: 0, captured: 0 });
    await expectInvariants({ orderIds: [view.id] }, { quiescent: true });
  });

  it('cancels UNKNOWN_SKU for a priced product that inventory has never stocked', async () => {
    const known = await product('unk-known', 300, 10);
    const unstocked = await product('unk-unstocked', 300, null);
    const buyer = await customer('unk', 10_000);

    const { decided, view } = await placeAndSettle(buyer, [
      { sku: known, quantity: 1 },
      { sku: unstocked, quantity: 1 },
    ]);
    expect(decided).toMatchObject({ status: 'CANCELLED', reason: 'UNKNOWN_SKU' });
    expect(view).toMatchObject({ status: 'CANCELLED', reason: 'UNKNOWN_SKU' });
    expect(await shop.api.stock(known)).toEqual({ sku: known, available: 10, reserved: 0, sold: 0 });
    expect((await shop.api.inventory.get(`/stock/${unstocked}`)).status).toBe(404);
    expect(await shop.api.account(buyer)).toEqual({ customerId: buyer, balance: 10_000, held: 0, captured: 0 });
    await expectInvariants({ orderIds: [view.id] }, { quiescent: true });
  });

  it('cancels INSUFFICIENT_FUNDS and releases the stock reservation', async () => {
    const sku = await product('poor', 1250, 10);
    const buyer = await customer('poor', 1249);

    const { decided, view } = await placeAndSettle(buyer, [{ sku, quantity: 1 }]);
    expect(decided).toMatchObject({ status: 'CANCELLED', reason: 'INSUFFICIENT_FUNDS' });
    expect(view).toMatchObject({ status: 'CANCELLED', reason: 'INSUFFICIENT_FUNDS', total: 1250 });
    expect(await shop.api.stock(sku)).toEqual({ sku, available: 10, reserved: 0, sold: 0 });
    expect(await shop.api.account(buyer)).toEqual({ customerId: buyer, balance: 1249, held: 0, captured: 0 });
    await expectInvariants({ orderIds: [view.id] }, { quiescent: true });
  });

  it('confirms an order that costs exactly the balance (the funds check is ≥, not >)', async () => {
    const sku = await product('exact', 1250, 10);
    const buyer = await customer('exact@example.com', 2500); // '@' and '.' are allowed in customer ids

    const { decided } = await placeAndSettle(buyer, [{ sku, quantity: 2 }]);
    expect(decided.status).toBe('CONFIRMED');
    expect(await shop.api.account(buyer)).toEqual({ customerId: buyer, balance: 0, held: 0, captured: 2500 });
  });

  it('cancels UNKNOWN_ACCOUNT for a customer without an account', async () => {
    const sku = await product('noacct', 700, 10);
    const stranger = await customer('noacct', null);

    const { decided, view } = await placeAndSettle(stranger, [{ sku, quantity: 2 }]);
    expect(decided).toMatchObject({ status: 'CANCELLED', reason: 'UNKNOWN_ACCOUNT' });
    expect(view).toMatchObject({ status: 'CANCELLED', reason: 'UNKNOWN_ACCOUNT' });
    expect(await shop.api.stock(sku)).toEqual({ sku, available: 10, reserved: 0, sold: 0 });
    expect((await shop.api.payment.get(`/accounts/${stranger}`, { customer: stranger })).status).toBe(404);
    // The refusal did not create an account either.
    expect(await sql(`SELECT 1 FROM payment_svc.accounts WHERE customer_id = $1`, [stranger])).toHaveLength(0);
    await expectInvariants({ orderIds: [view.id] }, { quiescent: true });
  });

  it('a participant stopped with SIGTERM exits gracefully, and after a restart checkouts go on', async () => {
    const sku = await product('restart', 400, 10);
    const buyer = await customer('restart', 10_000);
    const { graceful } = await shop.stack.inventory.stop();
    expect(graceful).toBe(true);
    // Nest re-raises the signal after closing; either way it ended on its own, not by SIGKILL.
    expect(shop.stack.inventory.lastExit?.signal === 'SIGTERM' || shop.stack.inventory.lastExit?.code === 0).toBe(true);
    await shop.stack.start('inventory');
    const { decided } = await placeAndSettle(buyer, [{ sku, quantity: 1 }]);
    expect(decided.status).toBe('CONFIRMED');
  });

  it('shows checkouts in /metrics: messages consumed and decisions counted move as orders go through', async () => {
    /** Sum of a counter over the three processes of this suite (Prometheus text format). */
    const total = async (metric: string) => {
      let sum = 0;
      for (const service of SERVICE_NAMES) {
        const text = await (await fetch(`${shop.stack.managementUrl(service)}/metrics`)).text();
        for (const line of text.split('\n')) if (line.startsWith(`${metric}{`)) sum += Number(line.split(' ').pop());
      }
      return sum;
    };
    const before = {
      consumed: await total('checkout_messages_consumed_total'),
      decided: await total('checkout_decisions_total'),
    };
    const sku = await product('metrics', 100, 50);
    const buyer = await customer('metrics', 100_000);
    for (let i = 0; i < 20; i++) await placeAndSettle(buyer, [{ sku, quantity: 1 }]);
    // Other suites' processes are replicas on the same queues, so some of the work may be theirs;
    // with 20 checkouts (4 messages per participant each, 20 decisions) some of it is ours.
    expect(await total('checkout_messages_consumed_total')).toBeGreaterThan(before.consumed);
    expect(await total('checkout_decisions_total')).toBeGreaterThan(before.decided);
  });

  it('keeps every invariant over everything this suite touched, and safety over the whole database', async () => {
    // Safety holds at every instant, whatever other suites are doing at the same time.
    await expectInvariants();
    const orders = await sql<{ id: string }>(`SELECT id::text AS id FROM order_svc.orders WHERE customer_id LIKE $1`, [
      `${ids.tag}-%`,
    ]);
    expect(orders.length).toBeGreaterThanOrEqual(8);
    await expectInvariants({ orderIds: orders.map((o) => o.id) }, { quiescent: true });
  });
});

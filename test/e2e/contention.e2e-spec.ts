import { mapLimit } from '../support/http';
import { runIds } from '../support/ids';
import { expectInvariants, waitUntilDecided, waitUntilQuiescent } from '../support/invariants';
import { NO_CUSTOMER_LIMITS } from '../support/services';
import { useShop } from '../support/shop';

/**
 * Many concurrent orders competing for one scarce resource. The participants' conditional
 * updates must let exactly as many orders through as the resource allows — never one more
 * (overselling, overdrawing), never one fewer (a lost reservation or hold) — and every loser is
 * cancelled with the right reason and leaves nothing reserved or held.
 */

const ids = runIds('contention');
const IN_FLIGHT = 50;
const DECIDE_MS = 90_000;
const TEST_MS = 180_000;

// A generous prepare deadline: this suite is about who wins, not about how fast a busy 2-core box is;
// and few customers place many orders at once, which the per-customer limits would refuse.
const shop = useShop({ env: { all: { PREPARE_TIMEOUT_MS: '60000' }, order: NO_CUSTOMER_LIMITS } });

interface Placed {
  id: string;
  customerId: string;
}

/**
 * POSTs every order with at most IN_FLIGHT requests at once; every one must be accepted (202),
 * after waiting out the admission control's 503s (a burst may exceed its bound) like a client.
 */
async function placeAll(orders: Array<{ customerId: string; sku: string }>): Promise<Placed[]> {
  const statuses = new Map<number, number>();
  const placed = await mapLimit(orders, IN_FLIGHT, async ({ customerId, sku }) => {
    const response = await shop.api.placeOrderRetrying({ customerId, items: [{ sku, quantity: 1 }] });
    statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
    if (response.status !== 202) throw new Error(`POST /orders answered ${response.status}: ${response.text}`);
    return { id: response.json.id, customerId };
  });
  expect(Object.fromEntries(statuses)).toEqual({ 202: orders.length });
  expect(new Set(placed.map((p) => p.id)).size).toBe(orders.length);
  return placed;
}

function tally(decided: Map<string, { status: string; reason: string | null }>) {
  const counts: Record<string, number> = {};
  for (const { status, reason } of decided.values()) {
    const key = status === 'CANCELLED' ? `CANCELLED ${reason}` : status;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

describe('contention', () => {
  it(
    '300 concurrent orders for 40 units: exactly 40 confirmed, 260 OUT_OF_STOCK, no oversell',
    async () => {
      const STOCK = 40;
      const CUSTOMERS = 30;
      const PER_CUSTOMER = 10;
      const PRICE = 500;
      const sku = ids.sku('scarce');
      await shop.api.putProduct(sku, PRICE);
      await shop.api.putStock(sku, STOCK);
      const customers = Array.from({ length: CUSTOMERS }, (_, i) => ids.customer(`buyer${i}`));
      // Enough for every one of their orders, so money never decides.
      await mapLimit(customers, 10, (c) => shop.api.putAccount(c, PER_CUSTOMER * PRICE));

      const orders = customers.flatMap((customerId) =>
        Array.from({ length: PER_CUSTOMER }, () => ({ customerId, sku })),
      );
      const t0 = Date.now();
      const placed = await placeAll(orders);
      const tPlaced = Date.now();
      const decided = await waitUntilDecided(
        placed.map((p) => p.id),
        DECIDE_MS,
      );
      const tDecided = Date.now();
      const counts = tally(decided);
      console.log(
        `stock contention: placed ${placed.length} in ${tPlaced - t0} ms; all decided after ${tDecided - t0} ms: ${JSON.stringify(counts)}`,
      );
      expect(counts).toEqual({ CONFIRMED: STOCK, 'CANCELLED OUT_OF_STOCK': placed.length - STOCK });

      const orderIds = placed.map((p) => p.id);
      await waitUntilQuiescent({ orderIds, skus: [sku], customerIds: customers }, DECIDE_MS);
      console.log(`stock contention: quiescent (all acknowledged) after ${Date.now() - t0} ms`);

      expect(await shop.api.stock(sku)).toEqual({ sku, available: 0, reserved: 0, sold: STOCK });
      // Each customer paid exactly for their confirmed orders; the rest of the money is back.
      for (const customerId of customers) {
        const confirmed = placed.filter(
          (p) => p.customerId === customerId && decided.get(p.id)?.status === 'CONFIRMED',
        );
        const captured = confirmed.length * PRICE;
        expect(await shop.api.account(customerId)).toEqual({
          customerId,
          balance: PER_CUSTOMER * PRICE - captured,
          held: 0,
          captured,
        });
      }
      await expectInvariants({ orderIds, skus: [sku], customerIds: customers }, { quiescent: true });
    },
    TEST_MS,
  );

  it(
    '120 concurrent orders against money for 15: exactly 15 confirmed, 105 INSUFFICIENT_FUNDS, no overdraft',
    async () => {
      const AFFORDABLE = 15;
      const ORDERS = 120;
      const PRICE = 700;
      const sku = ids.sku('plenty');
      const customerId = ids.customer('spender');
      await shop.api.putProduct(sku, PRICE);
      await shop.api.putStock(sku, 1000);
      await shop.api.putAccount(customerId, AFFORDABLE * PRICE);

      const t0 = Date.now();
      const placed = await placeAll(Array.from({ length: ORDERS }, () => ({ customerId, sku })));
      const tPlaced = Date.now();
      const decided = await waitUntilDecided(
        placed.map((p) => p.id),
        DECIDE_MS,
      );
      const counts = tally(decided);
      console.log(
        `money contention: placed ${placed.length} in ${tPlaced - t0} ms; all decided after ${Date.now() - t0} ms: ${JSON.stringify(counts)}`,
      );
      expect(counts).toEqual({ CONFIRMED: AFFORDABLE, 'CANCELLED INSUFFICIENT_FUNDS': ORDERS - AFFORDABLE });

      const orderIds = placed.map((p) => p.id);
      await waitUntilQuiescent({ orderIds, skus: [sku], customerIds: [customerId] }, DECIDE_MS);
      expect(await shop.api.account(customerId)).toEqual({
        customerId,
        balance: 0,
        held: 0,
        captured: AFFORDABLE * PRICE,
      });
      expect(await shop.api.stock(sku)).toEqual({ sku, available: 1000 - AFFORDABLE, reserved: 0, sold: AFFORDABLE });
      await expectInvariants({ orderIds, skus: [sku], customerIds: [customerId] }, { quiescent: true });
    },
    TEST_MS,
  );
});

// What the benchmark buys and from whom: the shop it seeds (each service's data hook, apps/<name>/
// data.ts, turns it into that service's data), and the order bodies it sends, per mix. Every name carries the run's prefix, so a run against services that
// hold other data (--order-url …) only ever touches, and checks, its own.

const SPREAD_SKUS = 200;
const CUSTOMERS = 1000;
const MAX_LINES = 3;
const MAX_QUANTITY = 3;
const MAX_PRICE = 10_000; // cents

/** A small seeded PRNG (mulberry32): the same --seed sends the same orders. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The shop to seed and an order generator for a mix. `expectedOrders` is an upper bound of the
 * orders the run will send (warm-up included): the units of each product and what each customer
 * may spend are sized from it so that only the mix decides what gets cancelled (never an
 * accidental sell-out or empty account).
 */
export function planWorkload({ mix, declineShare, expectedOrders, seed, prefix }) {
  const random = prng(seed);
  const pick = (n) => Math.floor(random() * n);
  const sku = (i) => `${prefix}-S${String(i).padStart(3, '0')}`;
  const hotSku = `${prefix}-HOT`;

  // Enough of every SKU for every order to take the most of it; the hot one for every order.
  const products = [];
  for (let i = 0; i < SPREAD_SKUS; i++) {
    const unitPrice = 100 + pick(MAX_PRICE - 100);
    products.push({ sku: sku(i), name: `Bench item ${i}`, unitPrice, units: expectedOrders * MAX_QUANTITY });
  }
  if (mix === 'hot') products.push({ sku: hotSku, name: 'Bench hot item', unitPrice: 2500, units: expectedOrders });
  const price = new Map(products.map((p) => [p.sku, p.unitPrice]));

  // Funded customers can pay for every order they could place; in `declines`, broke ones have 0.
  const maxOrderTotal = MAX_LINES * MAX_QUANTITY * MAX_PRICE + 2500;
  const funded = Array.from({ length: CUSTOMERS }, (_, i) => `${prefix}-c${i}`);
  const broke = mix === 'declines' ? Array.from({ length: CUSTOMERS / 4 }, (_, i) => `${prefix}-x${i}`) : [];
  const customers = [
    ...funded.map((customerId) => ({ customerId, spend: expectedOrders * maxOrderTotal })),
    ...broke.map((customerId) => ({ customerId, spend: 0 })),
  ];
  const shop = { products, customers, orders: expectedOrders };

  /** The next order body: spread picks 1-3 distinct SKUs; hot buys one hot item. */
  function nextOrder() {
    const declined = mix === 'declines' && random() < declineShare;
    const customerId = declined ? broke[pick(broke.length)] : funded[pick(funded.length)];
    if (mix === 'hot') return { customerId, items: [{ sku: hotSku, quantity: 1 }] };
    const lines = 1 + pick(MAX_LINES);
    const chosen = new Set();
    while (chosen.size < lines) chosen.add(sku(pick(SPREAD_SKUS)));
    return { customerId, items: [...chosen].map((s) => ({ sku: s, quantity: 1 + pick(MAX_QUANTITY) })) };
  }

  return { shop, price, nextOrder };
}

import { randomBytes } from 'node:crypto';
import { outboxOf } from '../support/broker';
import { runIds } from '../support/ids';
import { waitUntilQuiescent } from '../support/invariants';
import { useShop } from '../support/shop';

/**
 * Each checkout continues its own request's trace: the prepares an order sends carry the trace
 * id of the POST that placed it (its `traceparent`, or a new trace when it has none), also when
 * many orders placed at once are written in one shared transaction. The services run without a
 * span exporter, as by default.
 */

const ids = runIds('trace');
const sku = ids.sku('item');
const shop = useShop();

const ORDERS = 40;
const customers = Array.from({ length: ORDERS }, (_, n) => ids.customer(`buyer-${n}`));

beforeAll(async () => {
  await shop.api.putProduct(sku, 100);
  await shop.api.putStock(sku, 10 * ORDERS);
  for (const customer of customers) await shop.api.putAccount(customer, 10_000);
});

const traceIdOf = (traceparent: string | undefined) =>
  /^00-([0-9a-f]{32})-[0-9a-f]{16}-0[01]$/.exec(traceparent ?? '')?.[1];

/**
 * The prepares the order's own request sent: those written with the order (the first stage). A
 * later stage's are sent by the batch of votes that releases them, in that batch's trace.
 */
async function preparesOf(orderId: string) {
  const prepares = (await outboxOf(orderId)).filter((row) => row.service === 'order' && row.type === 'prepare');
  return prepares.filter((row) => row.createdAt.getTime() === prepares[0]?.createdAt.getTime());
}

describe('trace context of a checkout', () => {
  it('carries each request’s own trace id into its prepares, for orders placed at once', async () => {
    const traceIds = customers.map(() => randomBytes(16).toString('hex'));
    const answers = await Promise.all(
      customers.map((customer, n) =>
        shop.api.placeOrder(
          { customerId: customer, items: [{ sku, quantity: 1 }] },
          { headers: { traceparent: `00-${traceIds[n]}-${randomBytes(8).toString('hex')}-00` } },
        ),
      ),
    );
    expect(answers.map((answer) => answer.status)).toEqual(customers.map(() => 202));
    const orderIds = answers.map((answer) => (answer.json as { id: string }).id);
    for (const [n, orderId] of orderIds.entries()) {
      const prepares = await preparesOf(orderId);
      expect(prepares.length).toBeGreaterThan(0);
      for (const prepare of prepares) expect(traceIdOf(prepare.body.traceContext.traceparent)).toBe(traceIds[n]);
    }
    await waitUntilQuiescent({ orderIds });
  });

  it('starts a new trace for a request that carries none, one per request', async () => {
    const answers = await Promise.all(
      customers
        .slice(0, 10)
        .map((customer) => shop.api.placeOrder({ customerId: customer, items: [{ sku, quantity: 1 }] })),
    );
    const orderIds = answers.map((answer) => (answer.json as { id: string }).id);
    const traceIds = new Set<string>();
    for (const orderId of orderIds) {
      const [prepare] = await preparesOf(orderId);
      const traceId = traceIdOf(prepare.body.traceContext.traceparent);
      expect(traceId).toMatch(/^[0-9a-f]{32}$/);
      expect(traceId).not.toBe('0'.repeat(32));
      traceIds.add(traceId!);
    }
    expect(traceIds.size).toBe(orderIds.length);
    await waitUntilQuiescent({ orderIds });
  });
});

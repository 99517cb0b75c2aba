import { randomUUID } from 'node:crypto';
import { eventually } from '../support/eventually';
import { sql } from '../support/db';
import type { HttpResponse, ProblemView } from '../support/http';
import { runIds } from '../support/ids';
import { waitUntilDecided } from '../support/invariants';
import { useShop } from '../support/shop';

/**
 * Per-customer limits at the door of POST /orders (OWASP API6): a customer past their checkouts
 * in flight or their rate is answered 429 + Retry-After with a problem body, and nothing is
 * written; another customer is served meanwhile; a replay of an order already placed is answered
 * as ever. The shop's own bounds on lines and quantity refuse an order with a 400, nothing written.
 *
 * With the fault suites, alone: it holds checkouts undecided by pausing payment, which the
 * payment processes of concurrently running suites (replicas on the same queues) would undo.
 */

const ids = runIds('limits');
const PRICE = 100;
const sku = ids.sku('item');

const IN_FLIGHT = 2;
/** One token every 20 s after the burst: none comes back while a test runs. */
const RATE = 0.05;
const BURST = 3;
const MAX_LINES = 3;
const MAX_QUANTITY = 50;

const shop = useShop({
  env: {
    order: {
      MAX_CHECKOUTS_IN_FLIGHT_PER_CUSTOMER: String(IN_FLIGHT),
      CUSTOMER_ORDER_RATE: String(RATE),
      CUSTOMER_ORDER_BURST: String(BURST),
      MAX_LINES_PER_ORDER: String(MAX_LINES),
      MAX_QUANTITY_PER_LINE: String(MAX_QUANTITY),
      // Orders held undecided (payment paused) stay PENDING for the whole test.
      PREPARE_TIMEOUT_MS: '60000',
    },
  },
});

const skus = Array.from({ length: MAX_LINES + 1 }, (_, i) => ids.sku(`line${i}`));

beforeAll(async () => {
  for (const s of [sku, ...skus]) {
    await shop.api.putProduct(s, PRICE);
    await shop.api.putStock(s, 10_000);
  }
});

async function customer(name: string): Promise<string> {
  const id = ids.customer(name);
  await shop.api.putAccount(id, 1_000_000);
  return id;
}

/** Everything a request of this customer could have written: orders (with their keys) and messages. */
async function writtenFor(customerId: string) {
  const [row] = await sql<{ orders: number; keys: string[]; messages: number }>(
    `SELECT (SELECT count(*) FROM order_svc.orders WHERE customer_id = $1)::int AS orders,
            (SELECT coalesce(array_agg(idempotency_key ORDER BY idempotency_key), '{}') FROM order_svc.orders
              WHERE customer_id = $1 AND idempotency_key IS NOT NULL) AS keys,
            (SELECT count(*) FROM order_svc.outbox o JOIN order_svc.orders r ON r.id::text = o.body->>'transactionId'
              WHERE r.customer_id = $1)::int AS messages`,
    [customerId],
  );
  return row;
}

function expectTooManyRequests(response: HttpResponse<unknown>, detail: RegExp) {
  expect(response.status).toBe(429);
  const retryAfter = Number(response.headers.get('retry-after'));
  expect(Number.isInteger(retryAfter) && retryAfter >= 1).toBe(true);
  expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const problem = response.json as ProblemView;
  expect(problem).toMatchObject({ type: 'about:blank', title: 'Too Many Requests', status: 429 });
  expect(problem.detail).toMatch(detail);
  return retryAfter;
}

const order = (customerId: string, quantity = 1) => ({ customerId, items: [{ sku, quantity }] });

describe('per-customer limits', () => {
  it('a customer past their checkouts in flight gets 429, writes nothing; another is served; a replay is answered', async () => {
    const mallory = await customer('mallory');
    const alice = await customer('alice');
    const placed: string[] = [];
    shop.stack.payment.suspend(); // every checkout waits for payment's vote: none is decided
    try {
      const firstKey = randomUUID();
      for (const key of [firstKey, randomUUID()]) {
        const response = await shop.api.placeOrder(order(mallory), { idempotencyKey: key });
        expect(response.status).toBe(202);
        placed.push(response.json.id);
      }
      const before = await writtenFor(mallory);
      expect(before.orders).toBe(IN_FLIGHT);

      const refusedKey = randomUUID();
      const refused = await shop.api.placeOrder(order(mallory), { idempotencyKey: refusedKey });
      expectTooManyRequests(refused, /checkouts of this customer are in progress/);
      const unkeyed = await shop.api.placeOrder(order(mallory, 2));
      expectTooManyRequests(unkeyed, /in progress/);
      expect(await writtenFor(mallory)).toEqual(before); // no order, no key, no message

      // Another customer is served meanwhile.
      const served = await shop.api.placeOrder(order(alice), { idempotencyKey: randomUUID() });
      expect(served.status).toBe(202);
      placed.push(served.json.id);

      // The replay of an order mallory placed is answered as ever (it writes nothing).
      const replay = await shop.api.placeOrder(order(mallory), { idempotencyKey: firstKey });
      expect(replay.status).toBe(202);
      expect(replay.json.id).toBe(placed[0]);
      expect(replay.headers.get('idempotent-replayed')).toBe('true');
      expect(await writtenFor(mallory)).toEqual(before);
    } finally {
      shop.stack.payment.resume();
    }

    // Once mallory's orders are decided, their slots are free again.
    const decided = await waitUntilDecided(placed, 60_000);
    expect([...decided.values()].map((d) => d.status)).toEqual(['CONFIRMED', 'CONFIRMED', 'CONFIRMED']);
    // A slot is freed when the decision's announcement reaches the order process, which may be
    // just after the decision is readable: until then the answer is 429 and nothing is written,
    // so the same order is tried again (same key) until it is let in.
    const afterKey = randomUUID();
    let after = await shop.api.placeOrder(order(mallory), { idempotencyKey: afterKey, waitSeconds: 20 });
    await eventually(
      async () => {
        if (after.status === 429)
          after = await shop.api.placeOrder(order(mallory), { idempotencyKey: afterKey, waitSeconds: 20 });
        return after.status !== 429;
      },
      { timeoutMs: 10_000, intervalMs: 100, what: "mallory's slots freed by the announcements" },
    );
    expect(after.status).toBe(200);
  });

  it('a customer past their rate gets 429 with Retry-After, writes nothing; another is served; a replay is answered', async () => {
    const bob = await customer('bob');
    const carol = await customer('carol');
    const keys = Array.from({ length: BURST }, () => randomUUID());
    const placed: string[] = [];
    for (const key of keys) {
      // Each decided before the next: only the rate can refuse the one after the burst.
      const response = await shop.api.placeOrder(order(bob), { idempotencyKey: key, waitSeconds: 20 });
      expect(response.status).toBe(200);
      placed.push(response.json.id);
    }
    const before = await writtenFor(bob);

    const refused = await shop.api.placeOrder(order(bob), { idempotencyKey: randomUUID() });
    const retryAfter = expectTooManyRequests(refused, /faster than 0.05 a second \(after a burst of 3\)/);
    expect(retryAfter).toBeLessThanOrEqual(1 / RATE);
    expect(await writtenFor(bob)).toEqual(before);

    expect((await shop.api.placeOrder(order(carol), { idempotencyKey: randomUUID() })).status).toBe(202);

    // A replay of a decided order, while bob is limited: its order, not a 429, and nothing new.
    const replay = await shop.api.placeOrder(order(bob), { idempotencyKey: keys[0] });
    expect(replay.status).toBe(200);
    expect(replay.json).toMatchObject({ id: placed[0], status: 'CONFIRMED' });
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    // The same key with another body is refused as ever (422), not hidden behind the limit.
    expect((await shop.api.placeOrder(order(bob, 2), { idempotencyKey: keys[0] })).status).toBe(422);
    expect(await writtenFor(bob)).toEqual(before);
  });

  it("refuses an order past the shop's bounds on lines and quantity with 400, nothing written", async () => {
    const dave = await customer('dave');
    const tooManyLines = await shop.api.placeOrder(
      { customerId: dave, items: skus.map((s) => ({ sku: s, quantity: 1 })) },
      { idempotencyKey: randomUUID() },
    );
    expect(tooManyLines.status).toBe(400);
    expect((tooManyLines.json as unknown as ProblemView).errors).toEqual([
      `items: at most ${MAX_LINES} lines per order in this shop`,
    ]);

    const tooMany = await shop.api.placeOrder(
      {
        customerId: dave,
        items: [
          { sku: skus[0], quantity: 1 },
          { sku: skus[1], quantity: MAX_QUANTITY + 1 },
        ],
      },
      { idempotencyKey: randomUUID() },
    );
    expect(tooMany.status).toBe(400);
    expect(tooMany.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect((tooMany.json as unknown as ProblemView).errors).toEqual([
      `items.1.quantity: at most ${MAX_QUANTITY} per line in this shop`,
    ]);
    expect(await writtenFor(dave)).toEqual({ orders: 0, keys: [], messages: 0 });

    // At the bounds: accepted.
    const atBounds = await shop.api.placeOrder({
      customerId: dave,
      items: skus.slice(0, MAX_LINES).map((s) => ({ sku: s, quantity: MAX_QUANTITY })),
    });
    expect(atBounds.status).toBe(202);
  });
});

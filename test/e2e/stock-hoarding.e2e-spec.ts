import { runIds } from '../support/ids';
import { expectInvariants, waitUntilDecided, waitUntilQuiescent } from '../support/invariants';
import { useShop } from '../support/shop';

/**
 * OWASP API6 (unrestricted access to a sensitive business flow), as it was tried on `npm start`:
 * 50 in stock; mallory, who has no money, loops orders for all 50 from 10 clients, as fast as the
 * door lets her; alice, who can pay, orders 1 at a time and waits for each decision. Before,
 * inventory reserved mallory's 50 at once while payment's "no" was on its way, and 8 of alice's
 * 10 were cancelled OUT_OF_STOCK. Now payment is asked first (money before stock: mallory's
 * orders never hold stock) and the door refuses mallory past her limits (429).
 */

const ids = runIds('hoarding');
const STOCK = 50;
const ALICE_ORDERS = 10;
const MALLORY_CLIENTS = 10;
const DECIDE_MS = 20_000;

const shop = useShop();

describe('a customer who cannot pay cannot hold the stock', () => {
  it(`alice's ${ALICE_ORDERS} orders are all CONFIRMED while mallory loops orders for all ${STOCK} units`, async () => {
    const sku = ids.sku('flash-sale');
    const alice = ids.customer('alice');
    const mallory = ids.customer('mallory'); // no account: payment says no to every order
    await shop.api.putProduct(sku, 100);
    await shop.api.putStock(sku, STOCK);
    await shop.api.putAccount(alice, 100_000);

    let aliceDone = false;
    const malloryAnswers = new Map<number, number>();
    const malloryOrders: string[] = [];
    const malloryLoop = async () => {
      while (!aliceDone) {
        const response = await shop.api.placeOrder({ customerId: mallory, items: [{ sku, quantity: STOCK }] });
        malloryAnswers.set(response.status, (malloryAnswers.get(response.status) ?? 0) + 1);
        if (response.status === 202) malloryOrders.push(response.json.id);
        else expect([429, 503]).toContain(response.status);
        // Turned away (429 or 503), she comes straight back: no Retry-After honoured.
      }
    };
    const mallorys = Array.from({ length: MALLORY_CLIENTS }, malloryLoop);

    const aliceDecisions: Array<{ status: string; reason: string | null }> = [];
    try {
      for (let i = 0; i < ALICE_ORDERS; i++) {
        const placed = await shop.api.placeOrderRetrying({ customerId: alice, items: [{ sku, quantity: 1 }] });
        expect(placed.status).toBe(202);
        const decided = (await waitUntilDecided([placed.json.id], DECIDE_MS)).get(placed.json.id)!;
        aliceDecisions.push({ status: decided.status, reason: decided.reason ?? null });
      }
    } finally {
      aliceDone = true;
      await Promise.all(mallorys);
    }

    console.log(
      `hoarding: alice ${JSON.stringify(aliceDecisions.map((d) => d.reason ?? d.status))}; ` +
        `mallory's answers ${JSON.stringify(Object.fromEntries(malloryAnswers))}`,
    );
    expect(aliceDecisions).toEqual(Array.from({ length: ALICE_ORDERS }, () => ({ status: 'CONFIRMED', reason: null })));
    expect(malloryAnswers.get(429) ?? 0).toBeGreaterThan(0);
    const malloryDecided = await waitUntilDecided(malloryOrders, DECIDE_MS);
    for (const decision of malloryDecided.values())
      expect(decision).toMatchObject({ status: 'CANCELLED', reason: 'UNKNOWN_ACCOUNT' });
    // At rest (every decision acknowledged: inventory applied alice's last commit) before the
    // checks that hold only at rest, the stock's among them.
    await waitUntilQuiescent({ customerIds: [alice, mallory] }, DECIDE_MS);
    expect(await shop.api.stock(sku)).toEqual({
      sku,
      available: STOCK - ALICE_ORDERS,
      reserved: 0,
      sold: ALICE_ORDERS,
    });
    await expectInvariants({ customerIds: [alice, mallory] }, { quiescent: true });
  });
});

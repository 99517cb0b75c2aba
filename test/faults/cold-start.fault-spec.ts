import { randomUUID } from 'node:crypto';
import { sql } from '../support/db';
import { expectInvariants, waitUntilDecided, waitUntilQuiescent } from '../support/invariants';
import { NO_CUSTOMER_LIMITS } from '../support/services';
import { useShop } from '../support/shop';
import { randomOrder, seedCatalog, seededRandom, SEED } from './harness';

/**
 * A cold start: a freshly started order service (no decision measured yet) is offered a burst,
 * all at once, that it can decide well within its admission target. It must accept all of it:
 * admission starts where capacity is likely, not at its floor, so a flash sale right after a
 * deploy is served rather than shed (503). Counts only, no times: the target is 30 s, far above
 * what the burst takes to decide even on a slow, shared machine, so no decision is late and the
 * bound never backs off.
 *
 * With the fault suites (in band): the burst must reach this suite's own, fresh order process.
 */
jest.setTimeout(180_000);

/** Fewer than the initial bound (ADMISSION_INITIAL_IN_FLIGHT, 400 by default), ten times the floor (20). */
const BURST = 200;

const shop = useShop({
  env: {
    order: {
      ...NO_CUSTOMER_LIMITS,
      ADMISSION_TARGET_DECISION_MS: '30000',
      PREPARE_TIMEOUT_MS: '120000',
    },
  },
});

it('accepts, all at once, a burst a freshly started order service can decide within its target', async () => {
  const catalog = await seedCatalog(shop.api, 'cold-start', { stockPerSku: 1_000, balance: 10_000_000 });
  const random = seededRandom(SEED);
  const keys = Array.from({ length: BURST }, () => randomUUID());
  const answers = await Promise.all(
    keys.map((idempotencyKey) => shop.api.placeOrder(randomOrder(catalog, random), { idempotencyKey })),
  );

  const byStatus: Record<number, number> = {};
  for (const { status } of answers) byStatus[status] = (byStatus[status] ?? 0) + 1;
  expect(byStatus).toEqual({ 202: BURST });

  const orderIds = answers.map((answer) => answer.json.id);
  const decided = await waitUntilDecided(orderIds, 120_000);
  expect([...decided.values()].filter((order) => order.reason === 'TIMEOUT')).toEqual([]);
  const [{ orders }] = await sql<{ orders: number }>(
    `SELECT count(*)::int AS orders FROM order_svc.orders WHERE idempotency_key = ANY($1::text[])`,
    [keys],
  );
  expect(orders).toBe(BURST);
  const scope = { ...catalog.scope, orderIds };
  await waitUntilQuiescent(scope, 60_000);
  await expectInvariants(scope, { quiescent: true });
});

import { randomUUID } from 'node:crypto';
import {
  asRaw,
  outboxOf,
  peekDeadLetters,
  publishAs,
  queuesOf,
  readyCounts,
  resentCopy,
  takeDeadLetters,
} from '../support/broker';
import { closeDb, db, sql } from '../support/db';
import { eventually } from '../support/eventually';
import { OrderView, ProblemView, ShopApi } from '../support/http';
import { expectInvariants, waitUntilDecided, waitUntilQuiescent } from '../support/invariants';
import { adminChannel, drainQueue } from '../support/rabbitmq';
import { topologyFor } from '@shop/messaging';
import { NO_CUSTOMER_LIMITS, Services, startServices, ServiceName } from '../support/services';
import { PARTICIPANTS, SERVICE_NAMES, type CheckoutMessage } from '@shop/contracts';
import { schemaOf } from '../../scripts/lib/checkout-invariants.mjs';
import {
  Catalog,
  closeAllBrokerConnections,
  measureCapacity,
  openLoop,
  placeOrders,
  restartServer,
  ScenarioReport,
  seedCatalog,
  seededRandom,
  SEED,
  settle,
} from './harness';

/**
 * Fault injection: each scenario runs a concurrent checkout load, breaks something real in the
 * middle of it (processes SIGKILLed and restarted, the broker or the database restarted,
 * connections cut, messages duplicated and reordered), then requires that every order is decided,
 * everything comes to rest, and every invariant of the design brief holds.
 * Run alone (in band): the scenarios restart the servers everybody uses.
 */
jest.setTimeout(240_000);

const ORDERS = 120;
const CONCURRENCY = 8;
const reports: ScenarioReport[] = [];
const random = seededRandom(SEED);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const pause = (minMs: number, maxMs: number) => sleep(minMs + random() * (maxMs - minMs));

let services: Services[] = [];
afterEach(async () => {
  await Promise.all(services.map((s) => s.stop()));
  services = [];
});
afterAll(async () => {
  await closeDb();
  console.log(`[fault] seed ${SEED} (FAULT_SEED=${SEED} replays the same fault moments)`);
  console.table(
    reports.map((r) => ({
      scenario: r.scenario,
      placed: r.placed,
      confirmed: r.confirmed,
      cancelled: r.cancelled,
      faults: r.faults.length,
      'client retries': r.retries,
      's to decide': r.secondsToDecideAfterFaults,
      's to rest': r.secondsToQuiescence,
    })),
  );
});

async function stack(
  env: Record<string, string> = {},
  stackIndex = 0,
  only: readonly ServiceName[] | undefined = undefined,
): Promise<Services> {
  const started = await startServices({
    // Eight customers place every order: the per-customer limits are not what is tested here.
    env: { all: { SWEEP_INTERVAL_MS: '250', ...env }, order: NO_CUSTOMER_LIMITS },
    stack: stackIndex,
    services: only,
  });
  services.push(started);
  return started;
}

/**
 * Runs the load and the fault injector side by side; the injector stops when the load is done. With
 * `loadUntilFaultsEnd`, the load goes on past its count until the injector returns, so a fault
 * timed by what the system did (not by a guess of how fast this machine is) still lands mid-load.
 */
async function underLoad(
  name: string,
  shop: Services,
  inject: (loadDone: () => boolean, catalog: Catalog) => Promise<string[]>,
  {
    apis = () => new ShopApi(shop),
    loadUntilFaultsEnd = false,
  }: { apis?: () => ShopApi; loadUntilFaultsEnd?: boolean } = {},
) {
  const catalog = await seedCatalog(new ShopApi(shop), name);
  let done = false;
  let faultsEnded = false;
  const injected = inject(() => done, catalog).finally(() => (faultsEnded = true));
  const until = () => !loadUntilFaultsEnd || faultsEnded;
  const load = await placeOrders(apis, catalog, { count: ORDERS, concurrency: CONCURRENCY, random, until }).finally(
    () => (done = true),
  );
  const faults = await injected;
  return { catalog, load, faults };
}

/** Orders of the catalog's customers confirmed so far (the coordinator's view: every participant committed). */
async function ordersConfirmed(catalog: Catalog): Promise<number> {
  const [{ confirmed }] = await sql<{ confirmed: number }>(
    `SELECT count(*)::int AS confirmed FROM order_svc.orders WHERE status = 'CONFIRMED' AND customer_id = ANY($1::text[])`,
    [catalog.customers],
  );
  return confirmed;
}

/** Both outcomes, for all the load placed: `ORDERS`, or more where it went on until the faults ended. */
function expectBothOutcomes(report: ScenarioReport, { loadUntilFaultsEnd = false } = {}) {
  if (loadUntilFaultsEnd) expect(report.placed).toBeGreaterThanOrEqual(ORDERS);
  else expect(report.placed).toBe(ORDERS);
  expect(report.confirmed).toBeGreaterThan(0);
  expect(report.cancelled).toBeGreaterThan(0);
}

async function killAndRestart(shop: Services, service: ServiceName, faults: string[]) {
  await shop.kill(service, 'SIGKILL');
  faults.push(`SIGKILL ${service}`);
  await shop.start(service);
}

it('order service SIGKILLed three times mid-load, restarted each time', async () => {
  const shop = await stack();
  const { catalog, load, faults } = await underLoad('kill-order', shop, async () => {
    const faults: string[] = [];
    for (let i = 0; i < 3; i++) {
      await pause(300, 1_200);
      await killAndRestart(shop, 'order', faults);
    }
    return faults;
  });
  const report = await settle('kill order', catalog, load, faults, { services });
  reports.push(report);
  expectBothOutcomes(report);
  expect(faults).toHaveLength(3);
});

it('each participant SIGKILLed twice mid-load, restarted each time', async () => {
  const shop = await stack();
  const { catalog, load, faults } = await underLoad('kill-participants', shop, async () => {
    const faults: string[] = [];
    for (const service of [...PARTICIPANTS, ...PARTICIPANTS]) {
      await pause(200, 800);
      await killAndRestart(shop, service, faults);
    }
    return faults;
  });
  const report = await settle('kill participants', catalog, load, faults, { services });
  reports.push(report);
  expectBothOutcomes(report);
});

it('rolling restart (SIGTERM, drain, start) of every service under load loses nothing', async () => {
  const shop = await stack();
  const { catalog, load, faults } = await underLoad('rolling-restart', shop, async () => {
    const faults: string[] = [];
    for (const service of SERVICE_NAMES) {
      await pause(200, 600);
      // Graceful: it drained and exited by itself within the timeout (Nest re-raises SIGTERM).
      const { graceful } = await shop.processes[service].stop();
      expect({ service, graceful }).toEqual({ service, graceful: true });
      expect([0, 'SIGTERM']).toContain(
        shop.processes[service].lastExit?.code ?? shop.processes[service].lastExit?.signal,
      );
      faults.push(`SIGTERM ${service}`);
      await shop.start(service);
    }
    return faults;
  });
  const report = await settle('rolling restart', catalog, load, faults, { services });
  reports.push(report);
  expectBothOutcomes(report);
});

it('RabbitMQ restarted mid-load', async () => {
  const shop = await stack();
  // The restart comes once some orders went through, however fast this machine is; orders placed
  // while the broker is down may time out (a restart can take longer than the deadline).
  const { catalog, load, faults } = await underLoad(
    'restart-rabbitmq',
    shop,
    async (_loadDone, catalog) => {
      await eventually(async () => (await ordersConfirmed(catalog)) >= 3, {
        what: 'some orders confirmed before the restart',
      });
      await pause(0, 500);
      await restartServer('rabbitmq');
      return ['restart RabbitMQ'];
    },
    { loadUntilFaultsEnd: true },
  );
  const report = await settle('restart RabbitMQ', catalog, load, faults, { services });
  reports.push(report);
  expectBothOutcomes(report, { loadUntilFaultsEnd: true });
});

it('all broker connections closed mid-load, twice', async () => {
  const shop = await stack();
  const { catalog, load, faults } = await underLoad('close-connections', shop, async () => {
    const faults: string[] = [];
    for (let i = 0; i < 2; i++) {
      await pause(300, 1_000);
      faults.push(`closed ${await closeAllBrokerConnections()} broker connections`);
    }
    return faults;
  });
  const report = await settle('close broker connections', catalog, load, faults, { services });
  reports.push(report);
  expectBothOutcomes(report);
});

it('Postgres restarted mid-load, twice', async () => {
  const shop = await stack();
  const { catalog, load, faults } = await underLoad('restart-postgres', shop, async () => {
    const faults: string[] = [];
    for (let i = 0; i < 2; i++) {
      await pause(300, 1_200);
      await restartServer('postgres');
      faults.push('restart Postgres');
    }
    return faults;
  });
  const report = await settle('restart Postgres', catalog, load, faults, { services });
  reports.push(report);
  expectBothOutcomes(report);
});

it('payment down longer than the prepare deadline, then back: its orders are cancelled, nothing stays held', async () => {
  const shop = await stack({ PREPARE_TIMEOUT_MS: '1500' });
  const { catalog, load, faults } = await underLoad('payment-down', shop, async () => {
    await shop.kill('payment', 'SIGKILL');
    await pause(3_500, 4_000); // more than twice the deadline
    await shop.start('payment');
    return ['payment down ~4 s (deadline 1.5 s)'];
  });
  const report = await settle('participant down past deadline', catalog, load, faults, { services });
  reports.push(report);
  expect(report.placed).toBe(ORDERS);
  expect(report.reasons.TIMEOUT ?? 0).toBeGreaterThan(0);
  // Back in business: with payment up again, a checkout goes through.
  const api = new ShopApi(shop);
  const customer = `${catalog.customers[1]}-after`;
  await api.putAccount(customer, 10_000);
  await api.putStock(catalog.skus[0], 10);
  const after = await api.placeOrder(
    { customerId: customer, items: [{ sku: catalog.skus[0], quantity: 1 }] },
    { waitSeconds: 10 },
  );
  expect(after.json).toMatchObject({ status: 'CONFIRMED' });
});

it('payment down at the abort and its abort lost: back, it asks, is answered abort and releases; no abort is acked or re-sent', async () => {
  // Money before stock (PREPARE_FIRST=payment): payment holds the money, then the inventory is out
  // of stock. Re-sends would come only after 10 min: a release can only come from the inquiry.
  const shop = await stack({
    PREPARE_TIMEOUT_MS: '120000', // the inventory's restart decides, not the deadline
    INQUIRY_AFTER_MS: '1000',
    INQUIRY_EVERY_MS: '500',
    DECISION_RESEND_BASE_MS: '600000',
    DECISION_RESEND_CAP_MS: '600000',
  });
  const api = new ShopApi(shop);
  const catalog = await seedCatalog(api, 'abort-lost', { stockPerSku: 0 });
  const [sku] = catalog.skus;
  const customer = catalog.customers[1];
  const stateIn = async (participant: string, id: string) =>
    (
      await sql<{ state: string; inquiries: number }>(
        `SELECT state, inquiries FROM ${schemaOf(participant)}.tpc_participant_transactions WHERE transaction_id = $1`,
        [id],
      )
    )[0];
  await shop.kill('inventory', 'SIGKILL'); // its prepare will wait in its queue
  const order = await api.placeAccepted(customer, [{ sku, quantity: 1 }]);
  await eventually(async () => (await stateIn('payment', order.id))?.state === 'PREPARED', {
    what: 'payment PREPARED',
    timeoutMs: 30_000,
  });
  await shop.kill('payment', 'SIGKILL');
  await shop.start('inventory'); // votes no (OUT_OF_STOCK): the abort goes to payment, which is down
  const decided = await waitUntilDecided([order.id], 30_000);
  expect(decided.get(order.id)).toMatchObject({ status: 'CANCELLED', reason: 'OUT_OF_STOCK' });
  // Presumed abort: the checkout is complete as decided, while payment still holds the money.
  const [coordinator] = await sql<{ completed: boolean }>(
    `SELECT completed_at IS NOT NULL AS completed FROM order_svc.tpc_transactions WHERE id = $1`,
    [order.id],
  );
  expect(coordinator.completed).toBe(true);
  expect((await stateIn('payment', order.id)).state).toBe('PREPARED');

  // The abort is lost (as a dead-lettered one is): taken out of payment's queue before it is back.
  const paymentQueue = topologyFor('payment').queue;
  await eventually(
    async () =>
      (await outboxOf(order.id)).some(
        (row) => row.type === 'decision' && row.body.recipient === 'payment' && row.sentAt,
      ),
    { what: "the abort published to payment's queue", timeoutMs: 30_000 },
  );
  const admin = await adminChannel();
  let lost: number;
  try {
    lost = (await drainQueue(admin.channel, paymentQueue)).length;
  } finally {
    await admin.close();
  }
  expect(lost).toBeGreaterThan(0);
  await shop.start('payment');

  await waitUntilQuiescent({ ...catalog.scope, orderIds: [order.id] }, 60_000);
  await expectInvariants({ ...catalog.scope, orderIds: [order.id] }, { quiescent: true });
  expect(await stateIn('payment', order.id)).toMatchObject({ state: 'ABORTED', inquiries: expect.any(Number) });
  expect((await stateIn('payment', order.id)).inquiries).toBeGreaterThan(0);
  expect(await api.account(customer)).toMatchObject({ held: 0, captured: 0 });
  const sent = await outboxOf(order.id);
  const kinds = sent.map((row) => `${row.service} ${row.type} → ${row.body.recipient}`);
  // No ack of an abort, from anyone; the inventory voted no and is never told; payment heard the
  // abort at the decision (lost) and as the answer to its inquiry.
  expect(sent.filter((row) => row.type === 'ack')).toEqual([]);
  expect(kinds).not.toContain('order decision → inventory');
  expect(kinds).toContain('payment inquiry → order');
  expect(
    sent
      .filter((row) => row.type === 'decision')
      .every((row) => (row.body.payload as { outcome?: string }).outcome === 'abort'),
  ).toBe(true);
});

it('duplicated, delayed and reordered messages injected through the broker', async () => {
  const shop = await stack();
  const { catalog, load, faults } = await underLoad('duplicates', shop, async (loadDone) => {
    const faults: string[] = [];
    let injected = 0;
    while (!loadDone()) {
      await pause(100, 300);
      // Recently sent checkout messages of every service, copied as they are (same id) and as
      // re-sent copies (new id), shuffled and published late, by the service that sent them.
      for (const sender of SERVICE_NAMES) {
        const rows = await sql<{ body: CheckoutMessage }>(
          `SELECT body FROM ${schemaOf(sender)}.outbox WHERE sent_at IS NOT NULL ORDER BY id DESC LIMIT 20`,
        );
        const copies = rows.flatMap(({ body }) => (random() < 0.5 ? [body, resentCopy(body)] : [resentCopy(body)]));
        copies.sort(() => random() - 0.5);
        await publishAs(sender, copies.map(asRaw));
        injected += copies.length;
      }
    }
    faults.push(`${injected} duplicate/re-sent copies injected`);
    return faults;
  });
  const report = await settle('duplicates and reordering', catalog, load, faults, { services });
  reports.push(report);
  expectBothOutcomes(report);
});

it('two replicas of every service, one of each SIGKILLed mid-load', async () => {
  const first = await stack();
  const second = await stack({}, 1);
  const apis = [new ShopApi(first), new ShopApi(second)];
  let turn = 0;
  const { catalog, load, faults } = await underLoad(
    'replicas',
    first,
    async () => {
      const faults: string[] = [];
      await pause(400, 1_000);
      for (const service of SERVICE_NAMES) {
        await second.kill(service, 'SIGKILL');
        faults.push(`SIGKILL ${service} replica 2`);
        await pause(100, 400);
      }
      return faults;
    },
    // Clients spread over both order replicas; a dead one makes them retry, and the next try
    // goes to the other replica.
    { apis: () => apis[turn++ % 2] },
  );
  const report = await settle('replicas, one of each killed', catalog, load, faults, { services });
  reports.push(report);
  expectBothOutcomes(report);
});

it('overload at 3× capacity for 20 s while a participant is SIGKILLed', async () => {
  const shop = await stack();
  const api = new ShopApi(shop);
  // Stock and money for far more than the run can sell: the outcomes are mostly CONFIRMED.
  const catalog = await seedCatalog(api, 'overload', { stockPerSku: 1_000_000, balance: 1_000_000_000 });
  // The fault, drawn before the orders are: ~5 s into the load, one participant down for 3–5 s.
  const victim = PARTICIPANTS[Math.floor(random() * PARTICIPANTS.length)];
  const [killAfterMs, downForMs] = [4_500 + random() * 1_000, 3_000 + random() * 2_000];
  const capacity = await measureCapacity(api, catalog, { clients: 32, seconds: 5, random });
  console.log(`[fault] overload: capacity ${capacity.perSecond.toFixed(1)} orders decided/s (32 clients, 5 s)`);
  expect(capacity.perSecond).toBeGreaterThanOrEqual(3);
  await waitUntilDecided(capacity.orderIds, 60_000);

  const faults: string[] = [];
  let backAt = Infinity;
  const injected = (async () => {
    await sleep(killAfterMs);
    await shop.kill(victim, 'SIGKILL');
    await sleep(downForMs);
    const restartAt = Date.now();
    await shop.start(victim);
    backAt = Date.now();
    const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
    faults.push(`SIGKILL ${victim}, down ${seconds(downForMs)} + ${seconds(backAt - restartAt)} restarting`);
  })();
  const answers = await openLoop(api, catalog, { rate: 3 * capacity.perSecond, seconds: 20, random });
  await injected;

  const accepted = answers.filter((a) => a.status === 202);
  const shed = answers.filter((a) => a.status === 503);
  expect(answers.filter((a) => a.status !== 202 && a.status !== 503).map((a) => `${a.status} ${a.text}`)).toEqual([]);
  const badShed = shed.filter(
    ({ headers, json }) =>
      !(
        Number(headers?.get('retry-after')) >= 1 &&
        headers?.get('content-type')?.startsWith('application/problem+json') &&
        (json as ProblemView).status === 503
      ),
  );
  expect(badShed.map((a) => `Retry-After ${a.headers?.get('retry-after')}: ${a.text}`)).toEqual([]);
  // Nothing was written for a shed request.
  const shedKeys = shed.map((a) => a.key);
  expect(
    await sql(`SELECT idempotency_key FROM order_svc.orders WHERE idempotency_key = ANY($1::text[])`, [shedKeys]),
  ).toEqual([]);

  const acceptedIds = accepted.map((a) => (a.json as OrderView).id);
  const load = { orderIds: [...capacity.orderIds, ...acceptedIds], retries: 0, shed: 0 };
  const report = await settle('overload 3× + participant killed', catalog, load, faults, { services });
  reports.push(report);
  const afterBack = new Set(accepted.filter((a) => a.sentAt >= backAt).map((a) => (a.json as OrderView).id));
  const timeouts = await sql<{ id: string }>(
    `SELECT id::text AS id FROM order_svc.orders WHERE id::text = ANY($1::text[]) AND reason = 'TIMEOUT'`,
    [acceptedIds],
  );
  const figures = {
    capacity: Number(capacity.perSecond.toFixed(1)),
    offered: answers.length,
    accepted: accepted.length,
    shed: shed.length,
    acceptedAfterBack: afterBack.size,
    timeouts: timeouts.length,
    timeoutsAfterBack: timeouts.filter((t) => afterBack.has(t.id)).length,
    faults,
  };
  console.log(`[fault] overload ${JSON.stringify(figures)}`);
  expect(accepted.length).toBeGreaterThan(0);
  expect(shed.length).toBeGreaterThan(0);
  expect(figures.timeoutsAfterBack).toBe(0);
});

it('sheds at the door while nothing can be decided, and a retry with the same key gets its order later', async () => {
  // A fixed bound of 3 checkouts in flight, no wait for a slot; a deadline no pause here reaches.
  const shop = await stack({
    ADMISSION_MIN_IN_FLIGHT: '3',
    ADMISSION_MAX_IN_FLIGHT: '3',
    ADMISSION_WAIT_MS: '0',
    PREPARE_TIMEOUT_MS: '120000',
  });
  const api = new ShopApi(shop);
  const catalog = await seedCatalog(api, 'shed-door');
  // The participants are down (and the fault scenarios run alone: no other suite's replicas).
  await Promise.all(PARTICIPANTS.map((p) => shop.kill(p, 'SIGKILL')));
  const body = (i: number) => ({
    customerId: catalog.customers[1 + i],
    items: [{ sku: catalog.skus[i], quantity: 1 }],
  });
  const pending: OrderView[] = [];
  for (let i = 0; i < 3; i++) {
    const response = await api.placeOrder(body(i), { idempotencyKey: randomUUID() });
    expect({ status: response.status, order: response.json.status }).toEqual({ status: 202, order: 'PENDING' });
    pending.push(response.json);
  }
  const outboxRows = async () => (await sql<{ n: number }>(`SELECT count(*)::int AS n FROM order_svc.outbox`))[0].n;
  const outboxBefore = await outboxRows();
  const key = randomUUID();
  const shed = await api.placeOrder(body(3), { idempotencyKey: key });
  expect(shed.status).toBe(503);
  expect(Number(shed.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  expect(shed.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(shed.json).toMatchObject({ status: 503 });
  const ordersWithKey = () => sql(`SELECT id FROM order_svc.orders WHERE idempotency_key = $1`, [key]);
  expect(await ordersWithKey()).toEqual([]);
  expect(await outboxRows()).toBe(outboxBefore);
  const metrics = await (await fetch(`${shop.managementUrl('order')}/metrics`)).text();
  expect(Number(/^checkout_admission_shed_total(?:\{.*\})? (\S+)$/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(1);

  await Promise.all(PARTICIPANTS.map((p) => shop.start(p)));
  await waitUntilDecided(pending.map((o) => o.id));
  // The client waits out Retry-After and sends the same request with the same key.
  const retried = await api.placeOrderRetrying(body(3), { idempotencyKey: key, maxTries: 5 });
  expect(retried.status).toBe(202);
  expect(await ordersWithKey()).toEqual([{ id: retried.json.id }]);
  const load = {
    orderIds: [...pending.map((o) => o.id), retried.json.id],
    retries: 1 + retried.shed,
    shed: 1 + retried.shed,
  };
  const report = await settle('shed at the door, retried', catalog, load, ['participants down', '1 shed'], {
    services,
  });
  reports.push(report);
  expect(report).toMatchObject({ placed: 4, confirmed: 4 });
});

it('refuses a new order at once while the line at the door is full, and still checks token and body first', async () => {
  // One slot; decisions late once nothing is decided for 200 ms (twice the target); a line that
  // waits a minute (and a write target that keeps the controlled delay out of this test).
  const shop = await stack({
    ADMISSION_MIN_IN_FLIGHT: '1',
    ADMISSION_MAX_IN_FLIGHT: '1',
    ADMISSION_TARGET_DECISION_MS: '100',
    ADMISSION_TARGET_WRITE_MS: '60000',
    ADMISSION_WAIT_MS: '60000',
    PREPARE_TIMEOUT_MS: '120000',
  });
  const api = new ShopApi(shop);
  const catalog = await seedCatalog(api, 'line-full', { stockPerSku: 100, balance: 1_000_000 });
  await Promise.all(PARTICIPANTS.map((p) => shop.kill(p, 'SIGKILL')));
  const body = (i: number) => ({
    customerId: catalog.customers[1 + (i % 7)],
    items: [{ sku: catalog.skus[i % catalog.skus.length], quantity: 1 }],
  });
  const first = await api.placeOrder(body(0), { idempotencyKey: randomUUID() });
  expect(first.status).toBe(202);
  // Eight wait in line for the one slot, which stays taken: nothing can be decided.
  const waiting = Array.from({ length: 8 }, (_, i) => api.placeOrder(body(1 + i), { idempotencyKey: randomUUID() }));
  // The next is refused at once (it would wait its minute otherwise), once decisions are late.
  // Until then a probe waits in line: it gives up after a second (one key: at most one order).
  const probeKey = randomUUID();
  const probe = () =>
    api.order.post<ProblemView>('/orders', {
      body: body(9),
      customer: body(9).customerId,
      headers: { 'idempotency-key': probeKey },
      timeoutMs: 1_000,
    });
  const refused = await eventually(
    async () => {
      const response = await probe();
      return response.status === 503 && response;
    },
    { timeoutMs: 30_000, what: 'a new order refused 503 at once by the full line' },
  );
  expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  // The contract first: no token is still a 401, a bad body still a 400.
  expect((await api.order.post('/orders', { body: body(10) })).status).toBe(401);
  expect((await api.placeOrder({ customerId: catalog.customers[1], items: 'not a list' })).status).toBe(400);

  await Promise.all(PARTICIPANTS.map((p) => shop.start(p)));
  const answers = await Promise.all(waiting);
  expect(answers.map((answer) => answer.status)).toEqual(answers.map(() => 202));
  const orderIds = [first.json.id, ...answers.map((answer) => answer.json.id)];
  await waitUntilDecided(orderIds);
  await waitUntilQuiescent({ ...catalog.scope, orderIds }, 60_000);
  await expectInvariants({ ...catalog.scope, orderIds }, { quiescent: true });
});

it('a participant SIGKILLed while its batch transaction is open (blocked mid-batch on a row lock)', async () => {
  const shop = await stack();
  const api = new ShopApi(shop);
  const catalog = await seedCatalog(api, 'kill-mid-batch', { stockPerSku: 1_000, balance: 1_000_000 });
  const [blocked, ...others] = catalog.skus;
  // Hold the stock row of one SKU: inventory's batch stops at its prepare, with the messages
  // before it in the batch already written (uncommitted) in the same transaction.
  const locker = await db().connect();
  let killed = false;
  try {
    await locker.query('BEGIN');
    await locker.query(`SELECT 1 FROM inventory_svc.stock WHERE sku = $1 FOR UPDATE`, [blocked]);
    const orders = [...others, blocked, ...others].map((sku, i) => ({
      customerId: catalog.customers[1 + (i % (catalog.customers.length - 1))],
      items: [{ sku, quantity: 1 }],
    }));
    const placed = await Promise.all(orders.map((body) => api.placeAccepted(body.customerId, body.items)));
    // Inventory's open transaction has written (it has a transaction id) and waits on the lock.
    await eventually(
      async () =>
        (
          await sql<{ n: number }>(
            `SELECT count(*)::int AS n FROM pg_stat_activity
              WHERE application_name = 'inventory' AND wait_event_type = 'Lock' AND backend_xid IS NOT NULL`,
          )
        )[0].n === 1,
      { what: 'inventory blocked mid-batch inside a transaction that wrote', timeoutMs: 30_000 },
    );
    await shop.kill('inventory', 'SIGKILL');
    killed = true;
    await locker.query('ROLLBACK');
    await shop.start('inventory');
    const load = { orderIds: placed.map((order) => order.id), retries: 0, shed: 0 };
    const report = await settle('kill mid-batch', catalog, load, ['SIGKILL inventory mid-batch'], { services });
    reports.push(report);
    // Nothing lost, nothing applied twice (the invariants in settle), and nothing cancelled: the
    // uncommitted batch was redelivered and decided well within the deadline.
    expect(report).toMatchObject({ placed: orders.length, confirmed: orders.length });
  } finally {
    if (!killed) await locker.query('ROLLBACK').catch(() => undefined);
    locker.release();
  }
});

it('an order replica SIGSTOPped while its transaction holds a checkout’s row lock: another replica decides it within the bound', async () => {
  // The stuck session is ended after this long idle in its transaction, freeing its locks.
  const IDLE_IN_TRANSACTION_MS = 2_000;
  const PREPARE_TIMEOUT_MS = 3_000;
  const env = {
    PREPARE_TIMEOUT_MS: String(PREPARE_TIMEOUT_MS),
    DB_IDLE_IN_TRANSACTION_TIMEOUT_MS: String(IDLE_IN_TRANSACTION_MS),
  };
  const shop = await stack(env);
  const api = new ShopApi(shop);
  const catalog = await seedCatalog(api, 'sigstop-order', { stockPerSku: 1_000, balance: 1_000_000 });
  const sku = catalog.skus[0];
  // Inventory's vote is held back (its stock row locked) until the checkout's coordinator row is
  // locked here too; then the vote makes the order replica wait for that row inside its batch.
  const [stockLocker, orderLocker] = [await db().connect(), await db().connect()];
  const stuckReplica = shop.processes.order;
  try {
    await stockLocker.query('BEGIN');
    await stockLocker.query(`SELECT 1 FROM inventory_svc.stock WHERE sku = $1 FOR UPDATE`, [sku]);
    const order = await api.placeAccepted(catalog.customers[1], [{ sku, quantity: 1 }]);
    await orderLocker.query('BEGIN');
    await orderLocker.query(`SELECT 1 FROM order_svc.tpc_transactions WHERE id = $1 FOR UPDATE`, [order.id]);
    await stockLocker.query('ROLLBACK');
    // The replica's batch has written (its inbox row) and waits for the checkout's row.
    const [{ pid }] = await eventually(
      async () => {
        const rows = await sql<{ pid: number }>(
          `SELECT pid FROM pg_stat_activity
            WHERE application_name = 'order' AND wait_event_type = 'Lock' AND backend_xid IS NOT NULL`,
        );
        return rows.length === 1 && rows;
      },
      { what: 'the order replica blocked mid-batch on the checkout’s row', timeoutMs: 30_000 },
    );
    // Paused; then the row is its: its session sits idle in the transaction, holding the lock.
    stuckReplica.suspend();
    const stoppedAt = Date.now();
    await orderLocker.query('ROLLBACK');
    await eventually(
      async () =>
        (await sql<{ state: string }>(`SELECT state FROM pg_stat_activity WHERE pid = $1`, [pid]))[0]?.state ===
        'idle in transaction',
      { what: 'the paused replica’s session idle in its transaction', timeoutMs: 5_000 },
    );

    // Another replica takes over: once the stuck session is ended, its sweeper can lock the row.
    const other = await stack(env, 1, ['order']);
    const decided = await eventually(
      async () => {
        const [row] = await sql<{ status: string }>(`SELECT status FROM order_svc.orders WHERE id = $1`, [order.id]);
        return row?.status !== 'PENDING' && row;
      },
      {
        what: `order ${order.id} decided while the replica holding its row is paused`,
        timeoutMs: IDLE_IN_TRANSACTION_MS + PREPARE_TIMEOUT_MS + 5_000,
      },
    );
    const decidedAfterMs = Date.now() - stoppedAt;
    expect(decided.status).toBe('CANCELLED');
    expect(await sql(`SELECT pid FROM pg_stat_activity WHERE pid = $1`, [pid])).toEqual([]);
    expect(other.order.running && stuckReplica.running).toBe(true);

    // Woken up, the paused replica finds its transaction gone and retries its batch; nothing is
    // applied twice, nothing stays held (settle's invariants), and nothing was dead-lettered.
    stuckReplica.resume();
    const faults = [`SIGSTOP order with the row locked; decided by the other replica after ${decidedAfterMs} ms`];
    const load = { orderIds: [order.id], retries: 0, shed: 0 };
    const report = await settle('SIGSTOP order holding a row lock', catalog, load, faults, { services });
    reports.push(report);
    expect(report).toMatchObject({ placed: 1, cancelled: 1, reasons: { TIMEOUT: 1 } });
    const parked = await peekDeadLetters('order');
    expect(parked.filter((m) => (m.body as CheckoutMessage).transactionId === order.id)).toEqual([]);
  } finally {
    stuckReplica.resume();
    await orderLocker.query('ROLLBACK').catch(() => undefined);
    await stockLocker.query('ROLLBACK').catch(() => undefined);
    orderLocker.release();
    stockLocker.release();
  }
});

it('one message of a batch keeps failing: the others of its batch go through, it is retried, parked with its reason, and its order cancelled', async () => {
  // The deadline leaves the failing prepares time for their three attempts (about a second); the
  // lock timeout, the gate below time to fill the next batch.
  const shop = await stack({ PREPARE_TIMEOUT_MS: '15000', MESSAGE_MAX_ATTEMPTS: '3', DB_LOCK_TIMEOUT_MS: '30000' });
  const api = new ShopApi(shop);
  const catalog = await seedCatalog(api, 'fail-in-batch', { stockPerSku: 1_000, balance: 1_000_000 });
  const [poisoned, gate, ...others] = catalog.skus;
  // Reserving the poisoned SKU's stock fails in the database. A BEFORE trigger counts the stock
  // rows the transaction reserves (a transaction-local setting); an AFTER trigger on the poisoned
  // SKU (it fires once the statement's rows are all updated) keeps how many other rows were
  // reserved with it in a sequence, which a rollback does not undo, and raises: proof that the
  // failing prepare shared a batch, whether the batch reserves in one statement or in several.
  const fault = `fault_fail_in_batch_${randomUUID().replaceAll('-', '')}`;
  await sql(`CREATE SEQUENCE public.${fault}`);
  await sql(`CREATE FUNCTION public.${fault}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
               SET search_path = pg_catalog AS $$
             DECLARE reserved_rows int := coalesce(nullif(current_setting('fault.reserved_rows', true), ''), '0')::int;
             BEGIN
               IF TG_WHEN = 'BEFORE' THEN
                 PERFORM set_config('fault.reserved_rows', (reserved_rows + 1)::text, true);
                 RETURN NEW;
               END IF;
               IF reserved_rows > 1 THEN PERFORM setval('public.${fault}', reserved_rows - 1); END IF;
               RAISE EXCEPTION 'fault injected: the stock of % cannot be reserved', NEW.sku;
             END $$`);
  const gateLock = await db().connect();
  try {
    await sql(`CREATE TRIGGER ${fault}_count BEFORE UPDATE ON inventory_svc.stock
                 FOR EACH ROW WHEN (NEW.reserved > OLD.reserved) EXECUTE FUNCTION public.${fault}()`);
    await sql(`CREATE TRIGGER ${fault} AFTER UPDATE ON inventory_svc.stock
                 FOR EACH ROW WHEN (NEW.reserved > OLD.reserved AND NEW.sku = '${poisoned}') EXECUTE FUNCTION public.${fault}()`);
    // The gate: the inventory's batch with the first order waits for its stock row, so the
    // prepares that follow are delivered meanwhile and make up its next batch, all together.
    await gateLock.query('BEGIN');
    await gateLock.query(`SELECT 1 FROM inventory_svc.stock WHERE sku = $1 FOR UPDATE`, [gate]);
    const orders = Array.from({ length: 12 }, (_, i) => ({
      customerId: catalog.customers[1 + (i % (catalog.customers.length - 1))],
      items: [{ sku: i === 0 ? gate : i === 5 || i === 11 ? poisoned : others[i % others.length], quantity: 1 }],
    }));
    const placed: OrderView[] = [];
    for (const order of orders) placed.push(await api.placeAccepted(order.customerId, order.items));
    const [inventoryQueue] = queuesOf(['inventory']);
    await eventually(
      async () => {
        const [{ sent }] = await sql<{ sent: number }>(
          `SELECT count(*)::int AS sent FROM order_svc.outbox
            WHERE routing_key = 'inventory.prepare' AND sent_at IS NOT NULL AND body->>'transactionId' = ANY($1::text[])`,
          [placed.map((order) => order.id)],
        );
        return sent === orders.length && (await readyCounts([inventoryQueue.queue]))[inventoryQueue.queue] === 0;
      },
      { what: `${orders.length} prepares delivered to the inventory, the first one's batch waiting at the gate` },
    );
    await gateLock.query('ROLLBACK');

    const load = { orderIds: placed.map((order) => order.id), retries: 0, shed: 0 };
    const faults = ['prepares of one SKU fail in the database, inside batches'];
    const report = await settle('one message of a batch fails', catalog, load, faults, { services });
    reports.push(report);
    const failing = placed.filter((_, i) => orders[i].items[0].sku === poisoned).map((order) => order.id);
    // The others went through; the failing ones were decided by the deadline, nothing else.
    expect(report).toMatchObject({ placed: 12, confirmed: 10, cancelled: 2, reasons: { TIMEOUT: 2 } });
    for (const id of failing) expect((await api.getOrder(id)).json).toMatchObject({ status: 'CANCELLED' });
    const [{ last_value: sharedWith, is_called: recorded }] = await sql<{ last_value: string; is_called: boolean }>(
      `SELECT last_value, is_called FROM public.${fault}`,
    );
    expect(recorded).toBe(true);
    expect(Number(sharedWith)).toBeGreaterThanOrEqual(1);
    // Nothing lost: each failing prepare is parked after its attempts, with the database's reason.
    const prepares = await Promise.all(
      failing.map(async (id) => (await outboxOf(id)).find((row) => row.routingKey === 'inventory.prepare')!),
    );
    const parked = await takeDeadLetters(
      'inventory',
      prepares.map((row) => row.messageId),
      60_000,
    );
    for (const message of parked) expect(message.reason).toContain('fault injected');
  } finally {
    await gateLock.query('ROLLBACK').catch(() => undefined);
    gateLock.release();
    await sql(`DROP TRIGGER IF EXISTS ${fault} ON inventory_svc.stock`);
    await sql(`DROP TRIGGER IF EXISTS ${fault}_count ON inventory_svc.stock`);
    await sql(`DROP FUNCTION IF EXISTS public.${fault}()`);
    await sql(`DROP SEQUENCE IF EXISTS public.${fault}`);
  }
});

import { asRaw, publishAs, resentCopy } from '../support/broker';
import { closeDb, sql } from '../support/db';
import { ShopApi } from '../support/http';
import { Services, startServices, ServiceName } from '../support/services';
import type { CheckoutMessage } from '@shop/contracts';
import {
  closeAllBrokerConnections,
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
const pause = (minMs: number, maxMs: number) =>
  new Promise((resolve) => setTimeout(resolve, minMs + random() * (maxMs - minMs)));

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

async function stack(env: Record<string, string> = {}, portOffset = 0): Promise<Services> {
  const started = await startServices({ env: { all: { SWEEP_INTERVAL_MS: '250', ...env } }, portOffset });
  services.push(started);
  return started;
}

/** Runs the load and the fault injector side by side; the injector stops when the load is done. */
async function underLoad(
  name: string,
  shop: Services,
  inject: (loadDone: () => boolean) => Promise<string[]>,
  apis: () => ShopApi = () => new ShopApi(shop),
) {
  const catalog = await seedCatalog(new ShopApi(shop), name);
  let done = false;
  const injected = inject(() => done);
  const load = await placeOrders(apis, catalog, { count: ORDERS, concurrency: CONCURRENCY, random }).finally(
    () => (done = true),
  );
  const faults = await injected;
  return { catalog, load, faults };
}

function expectBothOutcomes(report: ScenarioReport) {
  expect(report.placed).toBe(ORDERS);
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
    for (const service of ['inventory', 'payment', 'inventory', 'payment'] as const) {
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
    for (const service of ['order', 'inventory', 'payment'] as const) {
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
  const { catalog, load, faults } = await underLoad('restart-rabbitmq', shop, async () => {
    await pause(500, 1_000);
    await restartServer('rabbitmq');
    return ['restart RabbitMQ'];
  });
  const report = await settle('restart RabbitMQ', catalog, load, faults, { services });
  reports.push(report);
  expectBothOutcomes(report);
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

it('duplicated, delayed and reordered messages injected through the broker', async () => {
  const shop = await stack();
  const { catalog, load, faults } = await underLoad('duplicates', shop, async (loadDone) => {
    const faults: string[] = [];
    let injected = 0;
    while (!loadDone()) {
      await pause(100, 300);
      // Recently sent checkout messages of every service, copied as they are (same id) and as
      // re-sent copies (new id), shuffled and published late, by the service that sent them.
      for (const [schema, sender] of [
        ['order_svc', 'order'],
        ['inventory_svc', 'inventory'],
        ['payment_svc', 'payment'],
      ] as const) {
        const rows = await sql<{ body: CheckoutMessage }>(
          `SELECT body FROM ${schema}.outbox WHERE sent_at IS NOT NULL ORDER BY id DESC LIMIT 20`,
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
  const second = await stack({}, 5);
  const apis = [new ShopApi(first), new ShopApi(second)];
  let turn = 0;
  const { catalog, load, faults } = await underLoad(
    'replicas',
    first,
    async () => {
      const faults: string[] = [];
      await pause(400, 1_000);
      for (const service of ['order', 'inventory', 'payment'] as const) {
        await second.kill(service, 'SIGKILL');
        faults.push(`SIGKILL ${service} replica 2`);
        await pause(100, 400);
      }
      return faults;
    },
    // Clients spread over both order replicas; a dead one makes them retry, and the next try
    // goes to the other replica.
    () => apis[turn++ % 2],
  );
  const report = await settle('replicas, one of each killed', catalog, load, faults, { services });
  reports.push(report);
  expectBothOutcomes(report);
});

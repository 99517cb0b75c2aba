import { randomUUID } from 'node:crypto';
import { PARTICIPANTS, SERVICE_NAMES } from '@shop/contracts';
import { topologyFor } from '@shop/messaging';
import { closeDb, sql } from '../support/db';
import { testEnv, type RabbitNode } from '../support/env';
import { eventually } from '../support/eventually';
import { ShopApi } from '../support/http';
import { waitUntilDecided } from '../support/invariants';
import { adminChannel, management } from '../support/rabbitmq';
import { NO_CUSTOMER_LIMITS, Services, startServices } from '../support/services';
import {
  type Catalog,
  placeOrders,
  type ScenarioReport,
  seedCatalog,
  seededRandom,
  SEED,
  serviceConnections,
  everyServiceIn,
  settle,
  stackCommand,
} from '../faults/harness';

/**
 * The distributed layout (a three-node RabbitMQ cluster, a database server per service) under
 * checkout load. Broker: the node the services are connected to is stopped (SIGTERM), then
 * brought back, then the node they moved to is killed (SIGKILL) and brought back; the services
 * must fail over to a live node and the quorum queues keep every message (a majority of their
 * members stays up). Databases: each participant's server is restarted in turn; the order
 * service, on its own server, takes orders throughout. Every order must be decided, the system
 * must come to rest and every invariant hold. Runs in the `cluster` phase of `npm test`.
 */
jest.setTimeout(300_000);

const random = seededRandom(SEED);
const vhost = decodeURIComponent(new URL(testEnv.amqpAdminUrl).pathname.slice(1));

interface QueueView {
  name: string;
  type: string;
  members?: string[];
  online?: string[];
  leader?: string;
}

/** The checkout queues as a node's management API sees them. */
async function checkoutQueues(via: RabbitNode): Promise<QueueView[]> {
  const response = await management(`/api/queues/${encodeURIComponent(vhost)}`, {}, via.managementUrl);
  const queues = (await response.json()) as QueueView[];
  return queues.filter((q) => q.name.startsWith('checkout.'));
}

/** The node all the services' connections are on, as a live node reports it (not `not`). */
async function nodeOfServices(via: RabbitNode, not?: RabbitNode): Promise<RabbitNode> {
  return eventually(
    async () => {
      const ours = await serviceConnections(via.managementUrl);
      const nodes = new Set(ours.map((c) => c.node));
      if (!everyServiceIn(ours) || nodes.size !== 1) return undefined;
      const node = testEnv.rabbitNodes.find((n) => n.name === [...nodes][0]);
      return node && node.name !== not?.name ? node : undefined;
    },
    { what: 'every service connected to one live node', timeoutMs: 60_000, intervalMs: 250 },
  );
}

/** A node to ask about the cluster: none of those given (stopped or just restarted). */
function nodeOtherThan(...nodes: Array<RabbitNode | undefined>): RabbitNode {
  return testEnv.rabbitNodes.find((n) => !nodes.some((other) => other?.name === n.name))!;
}

/** A checkout placed right after a fault: the seconds until it is decided measure the recovery. */
async function probeCheckout(api: ShopApi, catalog: Catalog, since: number) {
  const key = randomUUID();
  const body = { customerId: catalog.customers[1], items: [{ sku: catalog.skus[0], quantity: 1 }] };
  const id = await eventually(
    async () => {
      const response = await api.placeOrder(body, { idempotencyKey: key });
      return response.status === 202 || response.status === 200 ? response.json.id : undefined;
    },
    { what: 'a probe order to be accepted', timeoutMs: 60_000, intervalMs: 100 },
  );
  const decided = (await waitUntilDecided([id], 60_000)).get(id)!;
  return { id, status: decided.status, seconds: Number(((Date.now() - since) / 1000).toFixed(2)) };
}

interface Recovery {
  how: 'stop' | 'kill';
  stopped: RabbitNode;
  movedTo: RabbitNode;
  stopAt: number;
  stopSeconds: number;
  probe: Awaited<ReturnType<typeof probeCheckout>>;
}

/** When each order was decided (ms since the epoch, ascending). */
async function decisionTimes(orderIds: string[]): Promise<number[]> {
  const rows = await sql<{ decided_at: Date }>(
    `SELECT decided_at FROM order_svc.orders WHERE id::text = ANY($1::text[]) ORDER BY decided_at`,
    [orderIds],
  );
  return rows.map((r) => r.decided_at.getTime());
}

/** The longest stretch (s) between `from` and `to` in which no checkout was decided. */
function longestPause(decidedAt: number[], from: number, to: number): number {
  const marks = [from, ...decidedAt.filter((t) => t > from && t < to), to];
  const gaps = marks.slice(1).map((t, i) => t - marks[i]);
  return Number((Math.max(...gaps) / 1000).toFixed(2));
}

const pause = (minMs: number, maxMs: number) =>
  new Promise((resolve) => setTimeout(resolve, minMs + random() * (maxMs - minMs)));

/** A steady checkout load (4 clients, an order every ~150 ms each) that runs until `inject` is done. */
async function underSteadyLoad(api: ShopApi, catalog: Catalog, inject: () => Promise<string[]>) {
  let faultsOver = false;
  const injected = inject().finally(() => (faultsOver = true));
  const load = await placeOrders(() => api, catalog, {
    count: 120,
    concurrency: 4,
    thinkMs: 150,
    random,
    until: () => faultsOver,
  });
  return { load, faults: await injected };
}

let shop: Services | undefined;
afterAll(async () => {
  await shop?.stop();
  await closeDb();
  // Leave every node running for whatever comes next, even if a test failed half-way.
  for (const node of testEnv.rabbitNodes) await stackCommand('rabbitmq-node', 'start', String(node.index));
});

beforeAll(async () => {
  shop = await startServices({ env: { all: { SWEEP_INTERVAL_MS: '250' }, order: NO_CUSTOMER_LIMITS } });
});

/** Orders placed and decided, and how long they took to settle after the faults. */
function printFigures(report: ScenarioReport): void {
  console.table([
    {
      scenario: report.scenario,
      'orders placed': report.placed,
      decided: report.confirmed + report.cancelled,
      confirmed: report.confirmed,
      cancelled: report.cancelled,
      'client retries': report.retries,
      's to decide after faults': report.secondsToDecideAfterFaults,
      's to rest': report.secondsToQuiescence,
    },
  ]);
}

describe('a three-node RabbitMQ cluster', () => {
  it('holds every checkout queue as a quorum queue with a member on each node', async () => {
    const queues = await eventually(
      async () => {
        // Each service's queue, its dead-letter queue, and a retry queue per retry delay.
        const found = await checkoutQueues(testEnv.rabbitNodes[0]);
        const names = new Set(found.map((queue) => queue.name));
        const complete = SERVICE_NAMES.every((service) => {
          const { queue, deadLetterQueue } = topologyFor(service);
          return (
            names.has(queue) && names.has(deadLetterQueue) && found.some((q) => q.name.startsWith(`${queue}.retry.`))
          );
        });
        return complete ? found : undefined;
      },
      { what: 'the services’ checkout queues', timeoutMs: 30_000, intervalMs: 250 },
    );
    for (const queue of queues) {
      expect({ name: queue.name, type: queue.type }).toEqual({ name: queue.name, type: 'quorum' });
      expect([...(queue.members ?? [])].sort()).toEqual(testEnv.rabbitNodes.map((n) => n.name).sort());
    }
  });

  it('loses nothing when the node the services use is stopped, and then the next one killed, under load', async () => {
    const api = new ShopApi(shop!);
    // Enough stock and money that most checkouts go all the way (prepare, commit) through the faults.
    const catalog = await seedCatalog(api, 'cluster', { stockPerSku: 250, balance: 300_000 });
    const probes: string[] = [];
    const recoveries: Recovery[] = [];

    const inject = async (): Promise<string[]> => {
      const faults: string[] = [];
      let previous: RabbitNode | undefined;
      // First a clean shutdown (a deploy), then a crash: the node's connections and its quorum
      // queue leaders vanish without a word.
      for (const how of ['stop', 'kill'] as const) {
        await pause(1_000, 2_000);
        const victim = await nodeOfServices(nodeOtherThan(previous));
        const stopAt = Date.now();
        await stackCommand('rabbitmq-node', how, String(victim.index));
        const stopSeconds = (Date.now() - stopAt) / 1000;
        faults.push(`${how} ${victim.name}`);
        const probe = await probeCheckout(api, catalog, stopAt);
        probes.push(probe.id);
        const movedTo = await nodeOfServices(nodeOtherThan(victim, previous), victim);
        recoveries.push({ how, stopped: victim, movedTo, stopAt, stopSeconds, probe });
        await stackCommand('rabbitmq-node', 'start', String(victim.index));
        faults.push(`start ${victim.name}`);
        previous = victim;
      }
      return faults;
    };

    const { load, faults } = await underSteadyLoad(api, catalog, inject);
    const report: ScenarioReport = await settle(
      'broker cluster: stop, then kill, the services’ node',
      catalog,
      { ...load, orderIds: [...load.orderIds, ...probes] },
      faults,
      { services: [shop!] },
    );
    console.log(`[cluster] seed ${SEED} (FAULT_SEED=${SEED} replays the same fault moments)`);
    const decidedAt = await decisionTimes([...load.orderIds, ...probes]);
    console.table(
      recoveries.map((r) => ({
        node: r.stopped.name,
        fault: r.how === 'stop' ? 'stopped (SIGTERM)' : 'killed (SIGKILL)',
        's to stop the node': Number(r.stopSeconds.toFixed(2)),
        'services moved to': r.movedTo.name,
        'longest pause in decisions (s)': longestPause(decidedAt, r.stopAt, r.stopAt + r.probe.seconds * 1000),
        's from stop to a new checkout decided': r.probe.seconds,
        'probe outcome': r.probe.status,
      })),
    );
    printFigures(report);

    expect(report.placed).toBeGreaterThanOrEqual(120);
    expect(report.confirmed).toBeGreaterThan(0);
    expect(new Set(recoveries.map((r) => r.stopped.name)).size).toBe(2);
    // Nothing was dead-lettered: a failover redelivers, it does not poison.
    const admin = await adminChannel();
    try {
      for (const service of SERVICE_NAMES) {
        const { messageCount } = await admin.channel.checkQueue(topologyFor(service).deadLetterQueue);
        expect({ service, deadLetters: messageCount }).toEqual({ service, deadLetters: 0 });
      }
    } finally {
      await admin.close();
    }
    // The stopped nodes came back as members of every quorum queue.
    await eventually(
      async () => {
        const queues = await checkoutQueues(testEnv.rabbitNodes[0]);
        return queues.every((q) => (q.online ?? []).length === testEnv.rabbitNodes.length) ? queues : undefined;
      },
      { what: 'every quorum queue member online again', timeoutMs: 60_000, intervalMs: 500 },
    );
  });
});

describe('a database server per service', () => {
  it('loses nothing when one service’s server restarts under load, then another’s, and orders are taken throughout', async () => {
    const api = new ShopApi(shop!);
    const catalog = await seedCatalog(api, 'db-per-service', { stockPerSku: 250, balance: 300_000 });
    const inject = async (): Promise<string[]> => {
      const faults: string[] = [];
      for (const participant of PARTICIPANTS) {
        await pause(1_000, 2_000);
        const restartAt = Date.now();
        await stackCommand('restart', `postgres-${participant}`);
        faults.push(`restart ${participant}'s Postgres (${((Date.now() - restartAt) / 1000).toFixed(1)} s)`);
      }
      return faults;
    };
    const { load, faults } = await underSteadyLoad(api, catalog, inject);
    const report = await settle('database per service: restart each participant’s server', catalog, load, faults, {
      services: [shop!],
    });
    printFigures(report);

    expect(report.placed).toBeGreaterThanOrEqual(120);
    expect(report.confirmed).toBeGreaterThan(0);
    // The order service's own server never went away: not one order failed. While a
    // participant's database restarts, decisions pause and admission control may shed new
    // orders (503, nothing written) until they resume: those retries are the only ones allowed.
    expect(report.retries - report.shed).toBe(0);
  });
});

import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import { sql } from '../support/db';
import { expectInvariants, Scope, waitUntilDecided, waitUntilQuiescent } from '../support/invariants';
import { eventually } from '../support/eventually';
import { management } from '../support/rabbitmq';
import { ShopApi } from '../support/http';
import { runIds } from '../support/ids';
import { SERVICE_NAMES, Services } from '../support/services';

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '..', '..');

/** A small, seeded PRNG (mulberry32): random fault moments that a failing run can replay. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const SEED = Number(process.env.FAULT_SEED ?? Date.now() % 1_000_000);

/** Runs a command of the project's own stack script (which alone knows how to start and stop its servers). */
export async function stackCommand(...args: string[]): Promise<void> {
  await run(process.execPath, [path.join(ROOT, 'scripts', 'stack.mjs'), ...args], { cwd: ROOT, timeout: 120_000 });
}

/** Restarts the private Postgres or RabbitMQ through the project's own script. */
export async function restartServer(what: 'postgres' | 'rabbitmq'): Promise<void> {
  await stackCommand('restart', what);
}

export interface ServiceConnection {
  name: string;
  /** The broker user: the service's name. */
  user: string;
  /** The cluster node the connection is on. */
  node: string;
}

/**
 * The services' broker connections as the management API (of node `via`) lists them now. It
 * lists a connection after its first stats tick, so poll until every service is seen.
 */
export async function serviceConnections(via?: string): Promise<ServiceConnection[]> {
  const connections = (await (await management('/api/connections', {}, via)).json()) as ServiceConnection[];
  return connections.filter((c) => (SERVICE_NAMES as readonly string[]).includes(c.user));
}

/** True when every service has a connection in the list. */
export const everyServiceIn = (connections: readonly ServiceConnection[]): boolean =>
  new Set(connections.map((c) => c.user)).size === SERVICE_NAMES.length;

/** Closes every service connection on the broker (as a network cut would); returns how many. */
export async function closeAllBrokerConnections(): Promise<number> {
  const ours = await eventually(
    async () => {
      const found = await serviceConnections();
      return everyServiceIn(found) ? found : undefined;
    },
    { what: 'the services’ broker connections in the management API', timeoutMs: 30_000, intervalMs: 250 },
  );
  for (const c of ours) {
    await management(`/api/connections/${encodeURIComponent(c.name)}`, {
      method: 'DELETE',
      headers: { 'X-Reason': 'fault injection' },
    });
  }
  return ours.length;
}

/** The shop a scenario sells from: a few SKUs and customers, sized so that some orders fail. */
export interface Catalog {
  skus: string[];
  customers: string[];
  scope: Scope;
}

export async function seedCatalog(
  api: ShopApi,
  name: string,
  // By default 100 units for ~120 orders of 1–2 units: stock runs out. The first customer can pay for 2 units.
  { stockPerSku = 25, balance = 20_000 }: { stockPerSku?: number; balance?: number } = {},
): Promise<Catalog> {
  const ids = runIds(`fault-${name}`);
  const skus = Array.from({ length: 4 }, (_, i) => ids.sku(`sku${i}`));
  const customers = Array.from({ length: 8 }, (_, i) => ids.customer(`c${i}`));
  for (const sku of skus) {
    await api.putProduct(sku, 500);
    await api.putStock(sku, stockPerSku);
  }
  for (const [i, customer] of customers.entries()) await api.putAccount(customer, i === 0 ? 1_000 : balance);
  return { skus, customers, scope: { skus, customerIds: customers } };
}

/** One order of 1–2 units of a random SKU by a random customer of the catalog. */
export function randomOrder(catalog: Catalog, random: () => number) {
  const pick = <T>(list: readonly T[]) => list[Math.floor(random() * list.length)];
  const sku = pick(catalog.skus);
  return { customerId: pick(catalog.customers), items: [{ sku, quantity: 1 + Math.floor(random() * 2) }] };
}

export interface LoadResult {
  orderIds: string[];
  /** POSTs that were refused or failed and then retried with the same Idempotency-Key. */
  retries: number;
  /** Of those, the ones shed at the door (503: admission control, nothing written). */
  shed: number;
}

/**
 * Places `count` orders, `concurrency` at a time, like a careful client: each has its own
 * Idempotency-Key, and is re-sent with that key until the service answers 2xx (a crashed or
 * restarting order service must not lose or duplicate an order).
 */
export async function placeOrders(
  api: () => ShopApi,
  catalog: Catalog,
  {
    count,
    concurrency,
    random,
    until = () => true,
    thinkMs = 0,
  }: {
    count: number;
    concurrency: number;
    random: () => number;
    /** Keeps placing orders past `count` until this says so (e.g. until the faults are over). */
    until?: () => boolean;
    /** Each client's pause between two orders (a steady rate rather than a burst). */
    thinkMs?: number;
  },
): Promise<LoadResult> {
  const orderIds: string[] = [];
  let retries = 0;
  let shed = 0;
  let next = 0;
  const worker = async () => {
    while (next < count || !until()) {
      next += 1;
      const body = randomOrder(catalog, random);
      const key = randomUUID();
      const deadline = Date.now() + 120_000;
      for (;;) {
        const response = await api()
          .placeOrder(body, { idempotencyKey: key })
          .catch((err: unknown) => ({ status: 0, json: undefined, text: String(err) }));
        if (response.status === 202 || response.status === 200) {
          orderIds.push((response.json as { id: string }).id);
          if (thinkMs > 0) await new Promise((resolve) => setTimeout(resolve, thinkMs));
          break;
        }
        if (response.status >= 400 && response.status < 500) {
          throw new Error(`order refused with ${response.status}: ${response.text}`);
        }
        retries += 1;
        if (response.status === 503) shed += 1;
        if (Date.now() > deadline) throw new Error(`order could not be placed for 120 s: last ${response.text}`);
        await new Promise((resolve) => setTimeout(resolve, 100 + random() * 200));
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { orderIds, retries, shed };
}

/**
 * What the system decides per second: `clients` in a closed loop for `seconds`, each placing an
 * order, waiting out a 503's Retry-After with the same Idempotency-Key, then placing the next.
 * Capacity: the orders decided within that window (decided_at) after its first second (while the
 * pipeline fills, nothing is decided yet), per second.
 */
export async function measureCapacity(
  api: ShopApi,
  catalog: Catalog,
  { clients, seconds, random }: { clients: number; seconds: number; random: () => number },
): Promise<{ perSecond: number; orderIds: string[] }> {
  const start = new Date();
  const end = new Date(start.getTime() + seconds * 1000);
  const orderIds: string[] = [];
  const client = async () => {
    while (Date.now() < end.getTime()) {
      const response = await api.placeOrderRetrying(randomOrder(catalog, random), { maxTries: 5 });
      if (response.status === 503) continue; // shed maxTries times: the next one
      if (response.status !== 202) throw new Error(`calibration order answered ${response.status}: ${response.text}`);
      orderIds.push(response.json.id);
    }
  };
  await Promise.all(Array.from({ length: clients }, client));
  const [{ decided }] = await sql<{ decided: number }>(
    `SELECT count(*)::int AS decided FROM order_svc.orders
      WHERE id::text = ANY($1::text[]) AND decided_at >= $2 AND decided_at < $3`,
    [orderIds, new Date(start.getTime() + 1000), end],
  );
  return { perSecond: decided / (seconds - 1), orderIds };
}

/** One POST /orders of an open loop: its Idempotency-Key, when it was sent, and the answer (0: none). */
export interface OpenLoopAnswer {
  key: string;
  sentAt: number;
  status: number;
  headers?: Headers;
  json?: unknown;
  text: string;
}

/**
 * An open loop: order i is sent at start + i / rate, whether or not the earlier ones were
 * answered, each once with its own Idempotency-Key (a 503 is not retried). Stops after
 * rate × seconds orders or when the time is up (a sender that fell behind offers fewer).
 */
export async function openLoop(
  api: ShopApi,
  catalog: Catalog,
  { rate, seconds, random }: { rate: number; seconds: number; random: () => number },
): Promise<OpenLoopAnswer[]> {
  const start = Date.now();
  const answers: Array<Promise<OpenLoopAnswer>> = [];
  for (let i = 0; i < Math.ceil(rate * seconds) && Date.now() < start + seconds * 1000; i++) {
    const due = start + (i * 1000) / rate;
    if (due > Date.now()) await new Promise((resolve) => setTimeout(resolve, due - Date.now()));
    const key = randomUUID();
    const sentAt = Date.now();
    answers.push(
      api.placeOrder(randomOrder(catalog, random), { idempotencyKey: key }).then(
        ({ status, headers, json, text }) => ({ key, sentAt, status, headers, json, text }),
        (err: unknown) => ({ key, sentAt, status: 0, text: String(err) }),
      ),
    );
  }
  return Promise.all(answers);
}

export interface ScenarioReport {
  scenario: string;
  placed: number;
  confirmed: number;
  cancelled: number;
  reasons: Record<string, number>;
  faults: string[];
  retries: number;
  shed: number;
  secondsToDecideAfterFaults: number;
  secondsToQuiescence: number;
}

/**
 * After the faults: every order must be decided within `decideWithinMs`, then the scope must
 * come to rest (all acknowledged, nothing reserved, held or prepared), and every invariant hold.
 */
export async function settle(
  name: string,
  catalog: Catalog,
  load: LoadResult,
  faults: string[],
  { decideWithinMs = 60_000, services }: { decideWithinMs?: number; services?: Services[] } = {},
): Promise<ScenarioReport> {
  const faultsEnded = Date.now();
  const scope: Scope = { ...catalog.scope, orderIds: load.orderIds };
  let decided;
  try {
    decided = await waitUntilDecided(load.orderIds, decideWithinMs);
    const secondsToDecide = (Date.now() - faultsEnded) / 1000;
    await waitUntilQuiescent(scope, 60_000);
    await expectInvariants(scope, { quiescent: true });
    const statuses = [...decided.values()];
    const reasons: Record<string, number> = {};
    for (const order of statuses) if (order.reason) reasons[order.reason] = (reasons[order.reason] ?? 0) + 1;
    const report: ScenarioReport = {
      scenario: name,
      placed: load.orderIds.length,
      confirmed: statuses.filter((o) => o.status === 'CONFIRMED').length,
      cancelled: statuses.filter((o) => o.status === 'CANCELLED').length,
      reasons,
      faults,
      retries: load.retries,
      shed: load.shed,
      secondsToDecideAfterFaults: Number(secondsToDecide.toFixed(2)),
      secondsToQuiescence: Number(((Date.now() - faultsEnded) / 1000).toFixed(2)),
    };
    console.log(`[fault] ${JSON.stringify(report)}`);
    return report;
  } catch (err) {
    if (services) console.error(services.map((s) => s.tails(30)).join('\n'));
    throw err;
  }
}

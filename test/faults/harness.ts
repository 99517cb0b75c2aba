import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
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

export interface LoadResult {
  orderIds: string[];
  /** POSTs that were refused or failed and then retried with the same Idempotency-Key. */
  retries: number;
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
  let next = 0;
  const pick = <T>(list: readonly T[]) => list[Math.floor(random() * list.length)];
  const worker = async () => {
    while (next < count || !until()) {
      next += 1;
      const sku = pick(catalog.skus);
      const body = { customerId: pick(catalog.customers), items: [{ sku, quantity: 1 + Math.floor(random() * 2) }] };
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
        if (Date.now() > deadline) throw new Error(`order could not be placed for 120 s: last ${response.text}`);
        await new Promise((resolve) => setTimeout(resolve, 100 + random() * 200));
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { orderIds, retries };
}

export interface ScenarioReport {
  scenario: string;
  placed: number;
  confirmed: number;
  cancelled: number;
  reasons: Record<string, number>;
  faults: string[];
  retries: number;
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

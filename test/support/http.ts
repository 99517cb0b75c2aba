import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { CustomerId, Sku } from '@shop/contracts';
import type { ServiceData, Shop } from '@shop/service-kit';
import { ADMIN_TOKEN, SERVICE_NAMES, type ServiceName, Services } from './services';
import { customerAuthorization } from './tokens';

/** A response with its body parsed as JSON when it is JSON (`json`), and the raw text. */
export interface HttpResponse<T = unknown> {
  status: number;
  headers: Headers;
  text: string;
  json: T;
  /** True when the body parsed as JSON. */
  isJson: boolean;
}

export interface RequestOptions {
  /** Serialised as JSON with content-type application/json. */
  body?: unknown;
  /** Sent as is (for malformed bodies); set the content type yourself in `headers`. */
  rawBody?: string | Buffer;
  headers?: Record<string, string>;
  /** Adds `Authorization: Bearer <ADMIN_TOKEN>`. */
  admin?: boolean;
  /** Adds `Authorization: Bearer <a token for this customer>` (see support/tokens.ts). */
  customer?: string;
  timeoutMs?: number;
}

/**
 * A plain fetch client (Node's fetch keeps connections alive) against one service's base URL.
 * It never throws on an HTTP status; the test decides what a status means.
 */
export class HttpClient {
  constructor(readonly baseUrl: string) {}

  async request<T = unknown>(method: string, path: string, options: RequestOptions = {}): Promise<HttpResponse<T>> {
    const headers: Record<string, string> = { accept: 'application/json', ...options.headers };
    let body: string | Buffer | undefined;
    if (options.rawBody !== undefined) body = options.rawBody;
    else if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers['content-type'] ??= 'application/json';
    }
    if (options.admin) headers.authorization ??= `Bearer ${ADMIN_TOKEN}`;
    if (options.customer !== undefined) headers.authorization ??= await customerAuthorization(options.customer);
    const response = await fetch(new URL(path, this.baseUrl), {
      method,
      headers,
      body,
      signal: AbortSignal.timeout(options.timeoutMs ?? 45_000),
    });
    const text = await response.text();
    let json: unknown = undefined;
    let isJson = false;
    if (text.length > 0) {
      try {
        json = JSON.parse(text);
        isJson = true;
      } catch {
        /* not JSON: leave json undefined */
      }
    }
    return { status: response.status, headers: response.headers, text, json: json as T, isJson };
  }

  get<T = unknown>(path: string, options?: RequestOptions) {
    return this.request<T>('GET', path, options);
  }

  post<T = unknown>(path: string, options?: RequestOptions) {
    return this.request<T>('POST', path, options);
  }

  put<T = unknown>(path: string, options?: RequestOptions) {
    return this.request<T>('PUT', path, { admin: true, ...options });
  }
}

export interface OrderItemView {
  sku: string;
  quantity: number;
  unitPrice: number;
  lineTotal: number;
}

export interface OrderView {
  id: string;
  customerId: string;
  items: OrderItemView[];
  total: number;
  currency: string;
  status: 'PENDING' | 'CONFIRMED' | 'CANCELLED';
  reason?: string | null;
  createdAt: string;
  decidedAt?: string | null;
}

export interface StockView {
  sku: string;
  available: number;
  reserved: number;
  sold: number;
}

export interface AccountView {
  customerId: string;
  balance: number;
  held: number;
  captured: number;
}

export interface ProblemView {
  type?: string;
  title: string;
  status: number;
  detail?: string;
  errors?: unknown;
}

export interface PlaceOrderOptions {
  idempotencyKey?: string;
  /**
   * Whose token to send: by default the body's customerId (or ANY_CUSTOMER when it has none that
   * is a string); null sends none.
   */
  customer?: string | null;
  /** Sends `Prefer: wait=N`. */
  waitSeconds?: number;
  headers?: Record<string, string>;
}

function expectStatus<T>(response: HttpResponse<T>, what: string, ...statuses: number[]): HttpResponse<T> {
  if (!statuses.includes(response.status)) {
    throw new Error(`${what}: expected HTTP ${statuses.join(' or ')}, got ${response.status}: ${response.text}`);
  }
  return response;
}

/** The customer whose token goes with a request that names none (a malformed body, an unknown order). */
export const ANY_CUSTOMER = 'e2e-any-customer';

function customerOf(body: unknown): string {
  const customerId = (body as { customerId?: unknown } | null)?.customerId;
  return typeof customerId === 'string' ? customerId : ANY_CUSTOMER;
}

/** The services whose data these suites set themselves, test by test (putProduct, putStock, putAccount). */
const MANAGED_BY_THE_SUITES: readonly ServiceName[] = ['order', 'payment', 'inventory'];

/** Room a participant the suites do not manage is given: more than every suite together takes. */
const ROOM = { units: 1_000_000, spend: 1_000_000_000_000, orders: 1_000_000 };

/** A service's data hook (apps/<name>/data.ts, see libs/service-kit/src/service-data.ts), if it has one. */
function dataHook(name: ServiceName): ServiceData | undefined {
  const file = path.resolve(__dirname, '..', '..', 'apps', name, 'data.ts');
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- a hook is optional: only loaded when there
  return fs.existsSync(file) ? (require(file) as { data: ServiceData }).data : undefined;
}

/**
 * The shop's REST contract, one method per route; admin PUTs send the admin token, customer
 * routes a token for the customer (the one an order was placed for, when reading it back).
 *
 * The suites set the data of the order, payment and inventory services themselves. Every other
 * participant (one a fork adds, which may say no) is given room, through its data hook, for each
 * product and customer a suite uses, before they are used: it says yes, so what a suite expects
 * (its reasons, its counts) does not depend on which participants exist.
 */
export class ShopApi {
  readonly order: HttpClient;
  readonly payment: HttpClient;
  readonly inventory: HttpClient;
  /** Who placed each order this client placed: the token to read it back with. */
  private readonly owners = new Map<string, string>();
  /** The participants the suites do not manage, with their data hooks. */
  private readonly unmanaged: Array<{ client: HttpClient; data: ServiceData }>;
  /** The products (`sku:…`) and customers (`customer:…`) those participants have room for. */
  private readonly roomFor = new Map<string, Promise<void>>();

  constructor(services: Services | Record<ServiceName, string>) {
    const url = (name: ServiceName) => (services instanceof Services ? services.url(name) : services[name]);
    this.order = new HttpClient(url('order'));
    this.payment = new HttpClient(url('payment'));
    this.inventory = new HttpClient(url('inventory'));
    this.unmanaged = SERVICE_NAMES.filter((name) => !MANAGED_BY_THE_SUITES.includes(name)).flatMap((name) => {
      const data = dataHook(name);
      return data ? [{ client: new HttpClient(url(name)), data }] : [];
    });
  }

  async putProduct(sku: string, unitPrice: number, name = `Product ${sku}`): Promise<void> {
    await this.makeRoom([sku], []);
    const response = await this.order.put(`/products/${encodeURIComponent(sku)}`, { body: { name, unitPrice } });
    expectStatus(response, `PUT /products/${sku}`, 200);
  }

  async putStock(sku: string, quantity: number): Promise<void> {
    const response = await this.inventory.put(`/stock/${encodeURIComponent(sku)}`, { body: { quantity } });
    expectStatus(response, `PUT /stock/${sku}`, 200);
  }

  async putAccount(customerId: string, balance: number): Promise<void> {
    await this.makeRoom([], [customerId]);
    const response = await this.payment.put(`/accounts/${encodeURIComponent(customerId)}`, { body: { balance } });
    expectStatus(response, `PUT /accounts/${customerId}`, 200);
  }

  /**
   * Room, in every participant the suites do not manage, for these products and customers (ids
   * the contracts refuse, as the bad-input suites send, need none: their orders go nowhere).
   */
  async makeRoom(skus: readonly string[], customers: readonly string[]): Promise<void> {
    if (!this.unmanaged.length) return;
    const products = skus.filter((sku) => Sku.safeParse(sku).success && !this.roomFor.has(`sku:${sku}`));
    const buyers = customers.filter((id) => CustomerId.safeParse(id).success && !this.roomFor.has(`customer:${id}`));
    if (products.length || buyers.length) {
      const made = this.giveRoom({
        products: products.map((sku) => ({ sku, name: `Product ${sku}`, unitPrice: 0, units: ROOM.units })),
        customers: buyers.map((customerId) => ({ customerId, spend: ROOM.spend })),
        orders: ROOM.orders,
      });
      // Concurrent orders for the same product wait for the same room, rather than race past it.
      for (const sku of products) this.roomFor.set(`sku:${sku}`, made);
      for (const id of buyers) this.roomFor.set(`customer:${id}`, made);
    }
    const keys = [...skus.map((sku) => `sku:${sku}`), ...customers.map((id) => `customer:${id}`)];
    await Promise.all(keys.flatMap((key) => this.roomFor.get(key) ?? []));
  }

  private async giveRoom(shop: Shop): Promise<void> {
    for (const { client, data } of this.unmanaged) {
      for (const { method, path: route, body } of data(shop)) {
        expectStatus(await client.request(method, route, { body, admin: true }), `${method} ${route}`, 200);
      }
    }
  }

  /** POST /orders; returns the raw response (202, 200, 4xx…). */
  async placeOrder(
    body: unknown,
    { idempotencyKey, waitSeconds, headers = {}, customer = customerOf(body) }: PlaceOrderOptions = {},
  ): Promise<HttpResponse<OrderView>> {
    const lines = (body as { items?: unknown } | null)?.items;
    const skus = Array.isArray(lines)
      ? lines.flatMap((line: { sku?: unknown }) => (typeof line?.sku === 'string' ? [line.sku] : []))
      : [];
    await this.makeRoom(skus, customer ? [customer] : []);
    const extra: Record<string, string> = { ...headers };
    if (idempotencyKey !== undefined) extra['idempotency-key'] = idempotencyKey;
    if (waitSeconds !== undefined) extra.prefer = `wait=${waitSeconds}`;
    const response = await this.order.post<OrderView>('/orders', {
      body,
      headers: extra,
      customer: customer ?? undefined,
    });
    if (customer && response.status < 300 && typeof response.json?.id === 'string') {
      this.owners.set(response.json.id, customer);
    }
    return response;
  }

  /**
   * POST /orders as a well-behaved client under load: a 503 (shed at the door, nothing written)
   * is retried after its Retry-After with the same Idempotency-Key, up to `maxTries` times.
   * Returns the last answer and how many times it was shed.
   */
  async placeOrderRetrying(
    body: unknown,
    { maxTries = 60, ...options }: PlaceOrderOptions & { maxTries?: number } = {},
  ): Promise<HttpResponse<OrderView> & { shed: number }> {
    const idempotencyKey = options.idempotencyKey ?? randomUUID();
    for (let shed = 0; ; shed++) {
      const response = await this.placeOrder(body, { ...options, idempotencyKey });
      if (response.status !== 503 || shed + 1 >= maxTries) return { ...response, shed };
      const retryAfter = Number(response.headers.get('retry-after'));
      if (!(retryAfter >= 1)) throw new Error(`503 without a valid Retry-After: ${response.text}`);
      await new Promise((resolve) => setTimeout(resolve, retryAfter * 1000));
    }
  }

  /** POST /orders that must be accepted (202); returns the pending order. */
  async placeAccepted(customerId: string, items: Array<{ sku: string; quantity: number }>): Promise<OrderView> {
    const response = expectStatus(await this.placeOrder({ customerId, items }), 'POST /orders', 202);
    return response.json;
  }

  /** GET /orders/:id as `customer`: by default whoever this client placed it for. */
  getOrder(id: string, customer = this.owners.get(id) ?? ANY_CUSTOMER): Promise<HttpResponse<OrderView>> {
    return this.order.get<OrderView>(`/orders/${encodeURIComponent(id)}`, { customer });
  }

  async stock(sku: string): Promise<StockView> {
    const response = await this.inventory.get<StockView>(`/stock/${encodeURIComponent(sku)}`);
    return expectStatus(response, `GET /stock/${sku}`, 200).json;
  }

  async account(customerId: string): Promise<AccountView> {
    const response = await this.payment.get<AccountView>(`/accounts/${encodeURIComponent(customerId)}`, {
      customer: customerId,
    });
    return expectStatus(response, `GET /accounts/${customerId}`, 200).json;
  }
}

/** Runs `fn` over `items` with at most `limit` calls in flight; results in input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>) {
  const results = new Array<R>(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index], index);
    }
  });
  await Promise.all(workers);
  return results;
}

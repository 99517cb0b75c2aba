/**
 * A service's data hook, `apps/<name>/data.ts`: the one place that says what data the service
 * needs for a shop's checkouts to go through it. `npm start` seeds the demo with it
 * (scripts/lib/seed.mjs), the end-to-end harness makes room with it for a participant its suites
 * do not manage (test/support/http.ts), and the benchmark seeds its workload with it
 * (scripts/lib/bench). A participant that can say no makes sure here that it says yes to them.
 *
 * The hook runs outside the app, under plain Node (its type stripping): import types only, and
 * nothing else (`import type { ServiceData } from '@shop/service-kit'`).
 */
export type ServiceData = (shop: Shop) => AdminRequest[];

/** What the checkouts to make room for will buy, and who will buy it. */
export interface Shop {
  /** Each product, with the units of it the orders may buy in all. */
  readonly products: ReadonlyArray<{ sku: string; name: string; unitPrice: number; units: number }>;
  /** Each customer, with what they may spend in all (integer minor units; 0: every order declined). */
  readonly customers: ReadonlyArray<{ customerId: string; spend: number }>;
  /** How many orders there may be in all. */
  readonly orders: number;
}

/** One call of the service's admin REST API (sent with the admin token); idempotent: a PUT. */
export interface AdminRequest {
  readonly method: 'PUT';
  /** The path on the service, e.g. `/stock/SKU-001`. */
  readonly path: string;
  readonly body: unknown;
}

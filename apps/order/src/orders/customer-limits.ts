import { Inject, Injectable } from '@nestjs/common';
import { Counter } from 'prom-client';
import { SERVICE_CONFIG, ServiceMetrics, TooManyRequestsException } from '@shop/service-kit';
import type { OrderConfig } from '../config';
import { AdmissionControl } from './admission-control';

/**
 * Token buckets, one per key: `rate` tokens a second, at most `burst`; a take spends one. At most
 * `maxTracked` keys are remembered, the least recently used forgotten first, so that many ids
 * cannot grow memory without bound. A forgotten key comes back with a full bucket, as it would
 * have after burst / rate idle seconds: forgetting only loses state when more than `maxTracked`
 * keys are used within that time.
 */
export class TokenBuckets {
  /** key → its tokens at `at` (ms, monotonic); least recently used first (a Map keeps insertion order). */
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly rate: number,
    private readonly burst: number,
    private readonly maxTracked: number,
  ) {}

  get size(): number {
    return this.buckets.size;
  }

  /** Spends a token of `key`: 0 if it had one, else the seconds until it has one (nothing spent). */
  take(key: string, now: number): number {
    let bucket = this.buckets.get(key);
    if (bucket) {
      this.buckets.delete(key); // set again below: now the most recently used
      bucket.tokens = Math.min(this.burst, bucket.tokens + ((now - bucket.at) / 1000) * this.rate);
      bucket.at = now;
    } else bucket = { tokens: this.burst, at: now };
    this.buckets.set(key, bucket);
    if (this.buckets.size > this.maxTracked) this.buckets.delete(this.buckets.keys().next().value!);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return (1 - bucket.tokens) / this.rate;
  }

  /** Gives back a token spent on a request that turned out to cost nothing. */
  refund(key: string): void {
    const bucket = this.buckets.get(key);
    if (bucket) bucket.tokens = Math.min(this.burst, bucket.tokens + 1);
  }
}

/** One customer's checkouts in flight here: each request without an Idempotency-Key, each key once. */
interface CustomerCheckouts {
  unkeyed: number;
  /** Idempotency-Key → the requests holding it (a retry racing its first try shares its slot). */
  keyed: Map<string, number>;
}

/** A customer's slot (and token) taken for one request: say what became of it (once). */
export interface CustomerSlot {
  /** Its order was decided: the slot is free; the token stays spent. */
  decided(): void;
  /** Nothing new was written (a replay, refused input, a 503 at the global door): slot and token back. */
  cancel(): void;
}

/**
 * Per-customer limits at the door of POST /orders, so that one customer cannot hold the shop's
 * stock or its admission slots (OWASP API6): at most MAX_CHECKOUTS_IN_FLIGHT_PER_CUSTOMER orders
 * accepted and undecided, and new orders at CUSTOMER_ORDER_RATE a second after a burst of
 * CUSTOMER_ORDER_BURST. Past either: 429 + Retry-After, before anything is written or a global
 * admission slot is taken. A slot is freed with the order's admission slot (`AdmissionControl.admit`'s
 * `decided`), so it follows the same decision announcements and reconciliation. The rate counts
 * orders written: a request that wrote nothing gives its token back (the in-flight bound and the
 * request's own cost, a read of the products, are what such requests meet).
 *
 * In memory, per process: with R replicas behind a balancer a customer gets up to R times each
 * limit. A database check would be shared, but costs a query (or a lock) on every order.
 */
@Injectable()
export class CustomerLimits {
  /** Customers with checkouts in flight here (bounded by the requests and undecided orders here). */
  private readonly inFlight = new Map<string, CustomerCheckouts>();
  private readonly rates: TokenBuckets;
  private readonly limited: Counter<'limit'>;

  constructor(
    @Inject(SERVICE_CONFIG) private readonly config: OrderConfig,
    private readonly admission: AdmissionControl,
    metrics: ServiceMetrics,
  ) {
    this.rates = new TokenBuckets(
      config.CUSTOMER_ORDER_RATE,
      config.CUSTOMER_ORDER_BURST,
      config.CUSTOMER_RATE_MAX_TRACKED,
    );
    this.limited = new Counter({
      name: 'checkout_customer_limited_total',
      help: 'New orders refused at the door (429 + Retry-After) by a per-customer limit: in_flight or rate',
      labelNames: ['limit'],
      registers: [metrics.registry],
    });
    metrics.gaugeOnScrape(
      'checkout_customers_in_flight',
      'Customers with checkouts accepted (or being placed) by this process and not yet decided',
      () => Promise.resolve(this.inFlight.size),
    );
  }

  /** How many of the customer's checkouts are in flight here. */
  checkoutsOf(customerId: string): number {
    const checkouts = this.inFlight.get(customerId);
    return checkouts ? checkouts.unkeyed + checkouts.keyed.size : 0;
  }

  /**
   * Takes one of the customer's slots and a token for a request, or throws 429 + Retry-After.
   * A request with an Idempotency-Key already in flight for this customer shares that slot and
   * spends no token: they are one checkout, and at most one of them writes an order.
   */
  take(customerId: string, idempotencyKey: string | undefined): CustomerSlot {
    const checkouts = this.inFlight.get(customerId) ?? { unkeyed: 0, keyed: new Map<string, number>() };
    const holders = idempotencyKey === undefined ? undefined : checkouts.keyed.get(idempotencyKey);
    if (holders !== undefined) {
      checkouts.keyed.set(idempotencyKey!, holders + 1);
      return this.slot(customerId, checkouts, idempotencyKey, false);
    }
    const max = this.config.MAX_CHECKOUTS_IN_FLIGHT_PER_CUSTOMER;
    if (checkouts.unkeyed + checkouts.keyed.size >= max) {
      this.limited.inc({ limit: 'in_flight' });
      throw new TooManyRequestsException(
        `${max} checkouts of this customer are in progress; retry once one is decided`,
        this.admission.retryAfterSeconds,
      );
    }
    const waitSeconds = this.rates.take(customerId, performance.now());
    if (waitSeconds > 0) {
      this.limited.inc({ limit: 'rate' });
      const { CUSTOMER_ORDER_RATE: rate, CUSTOMER_ORDER_BURST: burst } = this.config;
      throw new TooManyRequestsException(
        `this customer places orders faster than ${rate} a second (after a burst of ${burst})`,
        Math.max(1, Math.ceil(waitSeconds)),
      );
    }
    if (idempotencyKey === undefined) checkouts.unkeyed += 1;
    else checkouts.keyed.set(idempotencyKey, 1);
    this.inFlight.set(customerId, checkouts);
    return this.slot(customerId, checkouts, idempotencyKey, true);
  }

  private slot(
    customerId: string,
    checkouts: CustomerCheckouts,
    idempotencyKey: string | undefined,
    spentToken: boolean,
  ): CustomerSlot {
    let settled = false;
    const free = () => {
      if (settled) return false;
      settled = true;
      if (idempotencyKey === undefined) checkouts.unkeyed -= 1;
      else {
        const holders = checkouts.keyed.get(idempotencyKey)! - 1;
        if (holders > 0) checkouts.keyed.set(idempotencyKey, holders);
        else checkouts.keyed.delete(idempotencyKey);
      }
      if (checkouts.unkeyed === 0 && checkouts.keyed.size === 0) this.inFlight.delete(customerId);
      return true;
    };
    return {
      decided: () => void free(),
      cancel: () => {
        if (free() && spentToken) this.rates.refund(customerId);
      },
    };
  }
}

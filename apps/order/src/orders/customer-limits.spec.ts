import { Registry } from 'prom-client';
import type { DataSource } from 'typeorm';
import { TooManyRequestsException, type ServiceMetrics } from '@shop/service-kit';
import { OrderConfig } from '../config';
import { AdmissionControl } from './admission-control';
import { CustomerLimits, TokenBuckets } from './customer-limits';
import type { DecisionListener, DecisionSubscriber } from './decision-listener';

describe('TokenBuckets', () => {
  it('gives a burst, then the rate, and says how long until the next token', () => {
    const buckets = new TokenBuckets(2, 3, 100); // 2 a second, burst 3
    expect([0, 1, 2].map(() => buckets.take('a', 0))).toEqual([0, 0, 0]);
    expect(buckets.take('a', 0)).toBeCloseTo(0.5); // one token in half a second
    expect(buckets.take('a', 250)).toBeCloseTo(0.25);
    expect(buckets.take('a', 500)).toBe(0);
    expect(buckets.take('b', 500)).toBe(0); // another key has its own
    expect(buckets.take('a', 10_000)).toBe(0); // refilled, up to the burst only
    expect(buckets.take('a', 10_000)).toBe(0);
    expect(buckets.take('a', 10_000)).toBe(0);
    expect(buckets.take('a', 10_000)).toBeGreaterThan(0);
  });

  it('gives a refunded token back, never past the burst', () => {
    const buckets = new TokenBuckets(1, 1, 100);
    expect(buckets.take('a', 0)).toBe(0);
    expect(buckets.take('a', 0)).toBeGreaterThan(0);
    buckets.refund('a');
    expect(buckets.take('a', 0)).toBe(0);
    buckets.refund('a');
    buckets.refund('a');
    expect(buckets.take('a', 0)).toBe(0);
    expect(buckets.take('a', 0)).toBeGreaterThan(0);
  });

  it('remembers at most maxTracked keys, forgetting the least recently used', () => {
    const buckets = new TokenBuckets(0.001, 1, 3);
    for (const key of ['a', 'b', 'c']) expect(buckets.take(key, 0)).toBe(0);
    expect(buckets.take('a', 1)).toBeGreaterThan(0); // 'a' is now the most recently used
    for (let i = 0; i < 1_000; i++) buckets.take(`many-${i}`, 2);
    expect(buckets.size).toBe(3);
    expect(buckets.take('b', 3)).toBe(0); // forgotten: a full bucket again
  });
});

describe('CustomerLimits', () => {
  const controls: AdmissionControl[] = [];
  afterEach(async () => {
    for (const control of controls.splice(0)) await control.onModuleDestroy();
  });

  function limits(env: Record<string, string>) {
    const config = OrderConfig.parse({
      PORT: '3000',
      DATABASE_URL: 'postgres://u:p@h/db',
      AMQP_URL: 'amqp://u:p@h/v',
      ADMISSION_WAIT_MS: '0',
      ...env,
    });
    let subscriber: DecisionSubscriber | undefined;
    const listener = { subscribe: (s: DecisionSubscriber) => ((subscriber = s), () => undefined) };
    const metrics = { gaugeOnScrape: () => undefined, registry: new Registry() };
    const database = { query: () => Promise.resolve([]) };
    const admission = new AdmissionControl(
      config,
      database as unknown as DataSource,
      listener as unknown as DecisionListener,
      metrics as unknown as ServiceMetrics,
    );
    admission.onApplicationBootstrap();
    controls.push(admission);
    const customers = new CustomerLimits(config, admission, metrics as unknown as ServiceMetrics);
    /** Both doors, as POST /orders takes them; returns the global ticket. */
    const enter = async (customerId: string, key?: string) => {
      const slot = customers.take(customerId, key);
      return { slot, ticket: await admission.admit(() => slot.decided()) };
    };
    const limited = async (limit: string) =>
      (await metrics.registry.getSingleMetric('checkout_customer_limited_total')!.get()).values.find(
        (v) => v.labels.limit === limit,
      )?.value ?? 0;
    return { customers, admission, enter, announce: (id: string) => subscriber!.decided(id), limited };
  }

  it("bounds a customer's undecided checkouts, and frees a slot when its order is decided", async () => {
    const { customers, admission, enter, announce, limited } = limits({ MAX_CHECKOUTS_IN_FLIGHT_PER_CUSTOMER: '2' });
    (await enter('mallory')).ticket.accepted('m1');
    (await enter('mallory')).ticket.accepted('m2');
    const refused = (() => {
      try {
        return customers.take('mallory', undefined);
      } catch (err) {
        return err;
      }
    })();
    expect(refused).toBeInstanceOf(TooManyRequestsException);
    expect((refused as TooManyRequestsException).getStatus()).toBe(429);
    expect((refused as TooManyRequestsException).retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect(await limited('in_flight')).toBe(1);
    expect(admission.inFlight).toBe(2); // the refused one took no global slot
    (await enter('alice')).ticket.accepted('a1'); // another customer is served
    announce('m1');
    expect(customers.checkoutsOf('mallory')).toBe(1);
    (await enter('mallory')).ticket.accepted('m3');
    expect(customers.checkoutsOf('mallory')).toBe(2);
  });

  it('keeps the slot of an accepted order until its decision, however it was learnt', async () => {
    const { customers, admission, enter, announce } = limits({ MAX_CHECKOUTS_IN_FLIGHT_PER_CUSTOMER: '1' });
    const { ticket } = await enter('c');
    announce('o1'); // announced before this process knew the order was its own
    expect(customers.checkoutsOf('c')).toBe(1);
    ticket.accepted('o1');
    expect(customers.checkoutsOf('c')).toBe(0);
    expect(admission.inFlight).toBe(0);
  });

  it('counts requests with one Idempotency-Key as one checkout, and spends one token for them', async () => {
    const { customers } = limits({ MAX_CHECKOUTS_IN_FLIGHT_PER_CUSTOMER: '1', CUSTOMER_ORDER_BURST: '1' });
    const first = customers.take('c', 'k');
    const retries = Array.from({ length: 5 }, () => customers.take('c', 'k'));
    expect(customers.checkoutsOf('c')).toBe(1);
    expect(() => customers.take('c', 'other-key')).toThrow(TooManyRequestsException);
    for (const retry of retries) retry.cancel(); // replays: they spent no token, so give none back
    expect(customers.checkoutsOf('c')).toBe(1);
    first.decided();
    expect(customers.checkoutsOf('c')).toBe(0);
    expect(() => customers.take('c', 'k2')).toThrow(/faster than 1 a second/); // the burst of 1 was the first's
  });

  it('limits the rate per customer (orders written), with a Retry-After until the next token', async () => {
    const { customers, limited } = limits({ CUSTOMER_ORDER_RATE: '0.5', CUSTOMER_ORDER_BURST: '2' });
    customers.take('c', undefined).cancel(); // wrote nothing: its token is given back
    customers.take('c', undefined).decided();
    customers.take('c', undefined).decided();
    let refused: unknown;
    try {
      customers.take('c', undefined);
    } catch (err) {
      refused = err;
    }
    expect(refused).toBeInstanceOf(TooManyRequestsException);
    expect((refused as TooManyRequestsException).retryAfterSeconds).toBe(2); // 0.5 a second: a token in 2 s
    expect(await limited('rate')).toBe(1);
    expect(customers.take('d', undefined)).toBeDefined(); // another customer has their own bucket
  });

  it('gives back the slot and the token of a request shed at the global door, once', async () => {
    const { customers, admission, enter } = limits({
      CUSTOMER_ORDER_BURST: '1',
      ADMISSION_MIN_IN_FLIGHT: '1',
      ADMISSION_MAX_IN_FLIGHT: '1',
    });
    (await enter('other')).ticket.accepted('o1'); // the one global slot
    const slot = customers.take('c', undefined);
    await expect(admission.admit(() => slot.decided())).rejects.toThrow(/too many checkouts in progress/);
    slot.cancel(); // as the controller does
    slot.cancel();
    expect(customers.checkoutsOf('c')).toBe(0);
    customers.take('c', undefined).decided(); // the token came back (once: the burst is 1)
    expect(() => customers.take('c', undefined)).toThrow(TooManyRequestsException);
  });
});

import type { DataSource } from 'typeorm';
import { RetryLaterException, type ServiceMetrics } from '@shop/service-kit';
import { OrderConfig } from '../config';
import { AdmissionControl } from './admission-control';
import type { DecisionListener, DecisionSubscriber } from './decision-listener';

const created: AdmissionControl[] = [];
afterEach(() => {
  for (const control of created.splice(0)) control.onModuleDestroy();
  jest.useRealTimers();
});

/** The admission logic alone: the database is never reached here (no order goes stale). */
function admission(env: Record<string, string>) {
  const config = OrderConfig.parse({
    PORT: '3000',
    DATABASE_URL: 'postgres://u:p@h/db',
    AMQP_URL: 'amqp://u:p@h/v',
    ...env,
  });
  let subscriber: DecisionSubscriber | undefined;
  const listener = { subscribe: (s: DecisionSubscriber) => ((subscriber = s), () => undefined) };
  let shed = 0;
  const metrics = { gaugeOnScrape: () => undefined, shedOrder: () => (shed += 1) };
  const control = new AdmissionControl(
    config,
    {} as DataSource,
    listener as unknown as DecisionListener,
    metrics as unknown as ServiceMetrics,
  );
  control.onApplicationBootstrap();
  created.push(control);
  return { control, announce: (id: string) => subscriber!.decided(id), shed: () => shed };
}

describe('admission control', () => {
  describe('with a fixed bound of 2 and no wait', () => {
    const fixed = () =>
      admission({ ADMISSION_MIN_IN_FLIGHT: '2', ADMISSION_MAX_IN_FLIGHT: '2', ADMISSION_WAIT_MS: '0' });

    it('admits up to the bound, refuses the next with a 503 and Retry-After, and admits again once one is decided', async () => {
      const { control, announce, shed } = fixed();
      (await control.admit()).accepted('a');
      (await control.admit()).accepted('b');
      expect(control.inFlight).toBe(2);
      const refused = await control.admit().catch((err: unknown) => err);
      expect(refused).toBeInstanceOf(RetryLaterException);
      expect((refused as RetryLaterException).getStatus()).toBe(503);
      expect((refused as RetryLaterException).retryAfterSeconds).toBeGreaterThanOrEqual(1);
      expect(shed()).toBe(1);

      announce('someone-elses-order');
      expect(control.inFlight).toBe(2);
      announce('a');
      expect(control.inFlight).toBe(1);
      (await control.admit()).accepted('c');
      expect(control.inFlight).toBe(2);
      announce('b');
      announce('c');
    });

    it('frees the slot of a request that wrote nothing (refused input, a replay)', async () => {
      const { control } = fixed();
      const ticket = await control.admit();
      (await control.admit()).cancel();
      ticket.cancel();
      ticket.cancel(); // once only
      expect(control.inFlight).toBe(0);
    });
  });

  describe('with a wait', () => {
    it('gives a slot freed while a request waits to that request', async () => {
      const { control, announce } = admission({
        ADMISSION_MIN_IN_FLIGHT: '1',
        ADMISSION_MAX_IN_FLIGHT: '1',
        ADMISSION_WAIT_MS: '5000',
      });
      (await control.admit()).accepted('first');
      const waiting = control.admit();
      announce('first');
      (await waiting).accepted('second');
      expect(control.inFlight).toBe(1);
      announce('second');
    });
  });

  it('starts at the minimum bound (20 by default)', () => {
    expect(admission({}).control.limit).toBe(20);
  });

  it('bounds what is in flight by the decision rate × the target decision time', async () => {
    jest.useFakeTimers();
    const { control, announce } = admission({ ADMISSION_MIN_IN_FLIGHT: '10', ADMISSION_TARGET_DECISION_MS: '2000' });
    // 50 orders decided every 250 ms: 200 decisions/s, so 400 may be in flight for 2 s decisions.
    let n = 0;
    for (let tick = 0; tick < 40; tick++) {
      for (let i = 0; i < 50; i++) {
        const id = `order-${n++}`;
        (await control.admit()).accepted(id);
        announce(id);
      }
      jest.advanceTimersByTime(250);
    }
    expect(control.limit).toBeGreaterThan(380);
    expect(control.limit).toBeLessThan(420);
    // A quiet spell (nothing offered) says nothing of capacity: the bound stays.
    jest.advanceTimersByTime(10_000);
    expect(control.limit).toBeGreaterThan(380);
    // Orders come and nothing is decided any more (a participant down): once they fill the bound,
    // it falls back to the minimum.
    while (control.inFlight < control.limit) (await control.admit()).accepted(`stuck-${n++}`);
    jest.advanceTimersByTime(10_000);
    expect(control.limit).toBe(10);
  });
});

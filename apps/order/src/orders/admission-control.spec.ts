import { Registry } from 'prom-client';
import type { DataSource } from 'typeorm';
import { RetryLaterException, type ServiceMetrics } from '@shop/service-kit';
import { OrderConfig } from '../config';
import { AdmissionControl } from './admission-control';
import type { DecisionListener, DecisionSubscriber } from './decision-listener';

const created: AdmissionControl[] = [];
afterEach(async () => {
  for (const control of created.splice(0)) await control.onModuleDestroy();
  jest.useRealTimers();
  jest.restoreAllMocks();
});

/**
 * The admission logic alone. The database is reached only for orders gone stale (past their
 * deadline): here it answers that none is decided, and records what it was asked.
 */
function admission(env: Record<string, string>) {
  const config = OrderConfig.parse({
    PORT: '3000',
    DATABASE_URL: 'postgres://u:p@h/db',
    AMQP_URL: 'amqp://u:p@h/v',
    ...env,
  });
  let subscriber: DecisionSubscriber | undefined;
  const listener = { subscribe: (s: DecisionSubscriber) => ((subscriber = s), () => undefined) };
  const metrics = { gaugeOnScrape: () => undefined, registry: new Registry() };
  const shed = async () =>
    (await metrics.registry.getSingleMetric('checkout_admission_shed_total')!.get()).values[0].value;
  const staleChecks: string[][] = [];
  const database = {
    query: (_sql: string, [ids]: [string[]]) => (staleChecks.push(ids), Promise.resolve([])),
  };
  const control = new AdmissionControl(
    config,
    database as unknown as DataSource,
    listener as unknown as DecisionListener,
    metrics as unknown as ServiceMetrics,
  );
  control.onApplicationBootstrap();
  created.push(control);
  return { control, announce: (id: string) => subscriber!.decided(id), shed, staleChecks };
}

/** An admission control that has written (and decided) 200 orders a second for 10 s: its write bound is 20 at 100 ms. */
async function writingAt200PerSecondWith(waitMs: string) {
  const env = { ADMISSION_MIN_IN_FLIGHT: '60', ADMISSION_MAX_IN_FLIGHT: '60', ADMISSION_TARGET_WRITE_MS: '100' };
  const admitted = admission({ ...env, ADMISSION_WAIT_MS: waitMs });
  // 50 orders written and decided every 250 ms: 200 writes/s, so 20 in 100 ms.
  let n = 0;
  for (let tick = 0; tick < 40; tick++) {
    for (let i = 0; i < 50; i++) {
      const id = `order-${n++}`;
      (await admitted.control.admit()).accepted(id);
      admitted.announce(id);
    }
    await jest.advanceTimersByTimeAsync(250);
  }
  return admitted;
}

/**
 * Fills the bound on checkouts in flight (60) with accepted orders, so that one more waits out its
 * second and is shed (no write is held back meanwhile: the write rate stands); then decides them.
 */
async function shedOne(control: AdmissionControl, announce: (id: string) => void) {
  for (let n = 0; n < 60; n++) (await control.admit()).accepted(`filling-${n}`);
  const refused = control.admit().catch((err: unknown) => err);
  await jest.advanceTimersByTimeAsync(1_000);
  expect(await refused).toBeInstanceOf(RetryLaterException);
  for (let n = 0; n < 60; n++) announce(`filling-${n}`);
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
      expect(await shed()).toBe(1);

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

  describe('where the bound starts', () => {
    it('starts at a guess of the capacity (400 by default), not at the floor (20 by default)', () => {
      expect(admission({}).control.limit).toBe(400);
      expect(admission({ ADMISSION_INITIAL_IN_FLIGHT: '40' }).control.limit).toBe(40);
    });

    it('starts within the floor and the ceiling', () => {
      expect(admission({ ADMISSION_INITIAL_IN_FLIGHT: '5000', ADMISSION_MAX_IN_FLIGHT: '300' }).control.limit).toBe(
        300,
      );
      expect(admission({ ADMISSION_INITIAL_IN_FLIGHT: '1', ADMISSION_MIN_IN_FLIGHT: '30' }).control.limit).toBe(30);
    });

    it('admits a first burst as large as the initial bound at once, with no wait', async () => {
      const { control, shed } = admission({ ADMISSION_INITIAL_IN_FLIGHT: '100', ADMISSION_WAIT_MS: '0' });
      for (let n = 0; n < 100; n++) (await control.admit()).accepted(`burst-${n}`);
      expect(control.inFlight).toBe(100);
      expect(await shed()).toBe(0);
    });
  });

  describe('before the first decision (a cold process)', () => {
    it('holds the bound while the first writes take up to twice the target (warm-up), and falls past that', async () => {
      jest.useFakeTimers();
      const { control } = admission({
        ADMISSION_MIN_IN_FLIGHT: '5',
        ADMISSION_INITIAL_IN_FLIGHT: '100',
        ADMISSION_TARGET_DECISION_MS: '1000',
      });
      const writing = await Promise.all(Array.from({ length: 50 }, () => control.admit()));
      await jest.advanceTimersByTimeAsync(1_750);
      expect(control.limit).toBe(100);
      await jest.advanceTimersByTimeAsync(500);
      expect(control.limit).toBe(5); // nothing decided in twice the target: no capacity measured
      for (const ticket of writing) ticket.cancel();
    });
  });

  describe('the initial guess', () => {
    it('gives way, a target after the first decision, to what is served and what is used (2 × in flight)', async () => {
      jest.useFakeTimers();
      const { control, announce } = admission({
        ADMISSION_MIN_IN_FLIGHT: '5',
        ADMISSION_INITIAL_IN_FLIGHT: '500',
        ADMISSION_TARGET_DECISION_MS: '1000',
      });
      // 10 decided at once (40/s over the tick); then 120 in flight, none of them late yet.
      for (let n = 0; n < 10; n++) {
        (await control.admit()).accepted(`early-${n}`);
        announce(`early-${n}`);
      }
      await jest.advanceTimersByTimeAsync(500);
      for (let n = 0; n < 120; n++) (await control.admit()).accepted(`order-${n}`);
      await jest.advanceTimersByTimeAsync(500);
      expect(control.limit).toBe(500); // still the guess
      await jest.advanceTimersByTimeAsync(250);
      expect(control.limit).toBe(240); // 2 × the 120 in flight, above the 40 served
      for (let n = 0; n < 120; n++) announce(`order-${n}`);
    });
  });

  describe('the climb while decisions are within the target', () => {
    const climbing = (env: Record<string, string> = {}) =>
      admission({
        ADMISSION_MIN_IN_FLIGHT: '1',
        ADMISSION_INITIAL_IN_FLIGHT: '10',
        ADMISSION_TARGET_DECISION_MS: '1000',
        ADMISSION_WAIT_MS: '60000',
        ...env,
      });

    /** Admits `count` orders (waiting for a slot as needed); each is accepted as soon as admitted. */
    function offer(control: AdmissionControl, count: number, ids: string[]): Promise<void>[] {
      return Array.from({ length: count }, () =>
        control.admit().then((ticket) => {
          const id = `order-${ids.length}`;
          ids.push(id);
          ticket.accepted(id);
        }),
      );
    }

    it('adds a slot per order decided in time while the bound is full: the bound doubles per round', async () => {
      jest.useFakeTimers();
      const { control, announce } = climbing();
      const ids: string[] = [];
      const offered = offer(control, 100, ids);
      await jest.advanceTimersByTimeAsync(0);
      expect(ids).toHaveLength(10);
      // The first round: 10 decided in time, each freeing its slot and earning one.
      for (const id of ids.slice(0, 10)) announce(id);
      await jest.advanceTimersByTimeAsync(0);
      expect(control.limit).toBe(20);
      expect(control.inFlight).toBe(20);
      // The next round: the 20 now in flight.
      for (const id of ids.slice(10, 30)) announce(id);
      await jest.advanceTimersByTimeAsync(0);
      expect(control.limit).toBe(40);
      expect(control.inFlight).toBe(40);
      for (const id of ids.slice(30, 100)) announce(id);
      await Promise.all(offered);
      for (const id of ids.slice(30)) announce(id);
    });

    it('climbs no higher than the ceiling', async () => {
      jest.useFakeTimers();
      const { control, announce } = climbing({ ADMISSION_MAX_IN_FLIGHT: '12' });
      const ids: string[] = [];
      const offered = offer(control, 30, ids);
      await jest.advanceTimersByTimeAsync(0);
      for (let n = 0; n < 30; n++) {
        announce(ids[n]);
        await jest.advanceTimersByTimeAsync(0);
      }
      await Promise.all(offered);
      expect(control.limit).toBe(12);
    });

    it('does not climb on decisions while the bound is less than half used', async () => {
      const { control, announce } = climbing();
      for (let n = 0; n < 50; n++) {
        (await control.admit()).accepted(`alone-${n}`);
        (await control.admit()).accepted(`pair-${n}`);
        announce(`alone-${n}`);
        announce(`pair-${n}`);
      }
      expect(control.limit).toBe(10);
    });

    it('does not climb on decisions later than the target', async () => {
      jest.useFakeTimers();
      const { control, announce } = climbing({ ADMISSION_MIN_IN_FLIGHT: '10' });
      const ids: string[] = [];
      await Promise.all(offer(control, 10, ids));
      await jest.advanceTimersByTimeAsync(1_500);
      for (const id of ids) announce(id);
      expect(control.limit).toBe(10);
    });
  });

  describe('the back-off when decisions are late', () => {
    it('falls to decisions/s × the target once an order is undecided past the target, and to the floor when nothing is decided', async () => {
      jest.useFakeTimers();
      const { control, announce } = admission({
        ADMISSION_MIN_IN_FLIGHT: '5',
        ADMISSION_INITIAL_IN_FLIGHT: '500',
        ADMISSION_TARGET_DECISION_MS: '1000',
      });
      // 25 orders decided at once every 250 ms: 100 decisions/s, in time; little in flight, so no climb.
      let n = 0;
      const decideAtPace = async (ticks: number) => {
        for (let tick = 0; tick < ticks; tick++) {
          for (let i = 0; i < 25; i++) {
            const id = `order-${n++}`;
            (await control.admit()).accepted(id);
            announce(id);
          }
          await jest.advanceTimersByTimeAsync(250);
        }
      };
      // Little in flight: a second after the first decision, the guess gives way to what is served.
      await decideAtPace(40);
      expect(control.limit).toBeGreaterThanOrEqual(95);
      expect(control.limit).toBeLessThanOrEqual(101);
      // One order stuck: past the target the decisions are late, and the bound is what is served in 1 s.
      (await control.admit()).accepted('stuck');
      await decideAtPace(8);
      expect(control.limit).toBeGreaterThanOrEqual(95);
      expect(control.limit).toBeLessThanOrEqual(101);
      // Then nothing is decided any more: with the bound full, the rate and the bound fall to the floor.
      while (control.inFlight < control.limit) (await control.admit()).accepted(`stuck-${n++}`);
      await jest.advanceTimersByTimeAsync(20_000);
      expect(control.limit).toBe(5);
    });
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
      await jest.advanceTimersByTimeAsync(250);
    }
    expect(control.limit).toBeGreaterThan(380);
    expect(control.limit).toBeLessThan(420);
    // A quiet spell (nothing offered) says nothing of capacity: the bound stays.
    await jest.advanceTimersByTimeAsync(10_000);
    expect(control.limit).toBeGreaterThan(380);
    // Orders come and nothing is decided any more (a participant down): once they fill the bound,
    // it falls back to the minimum.
    while (control.inFlight < control.limit) (await control.admit()).accepted(`stuck-${n++}`);
    await jest.advanceTimersByTimeAsync(10_000);
    expect(control.limit).toBe(10);
  });

  describe('a decision counts from the slot taken, the write included', () => {
    it('falls to decisions/s × the target once an order is still being written past the target', async () => {
      jest.useFakeTimers();
      const { control, announce } = admission({
        ADMISSION_MIN_IN_FLIGHT: '5',
        ADMISSION_INITIAL_IN_FLIGHT: '500',
        ADMISSION_TARGET_DECISION_MS: '1000',
      });
      let n = 0;
      const decideAtPace = async (ticks: number) => {
        for (let tick = 0; tick < ticks; tick++) {
          for (let i = 0; i < 25; i++) {
            const id = `order-${n++}`;
            (await control.admit()).accepted(id);
            announce(id);
          }
          await jest.advanceTimersByTimeAsync(250);
        }
      };
      await decideAtPace(40);
      const slowWrite = await control.admit(); // its order not committed yet
      await decideAtPace(8);
      expect(control.limit).toBeGreaterThanOrEqual(95);
      expect(control.limit).toBeLessThanOrEqual(101);
      slowWrite.cancel();
    });
  });

  describe('the orders being written at once', () => {
    it('are bounded to writes/s × the write target while the door sheds, and not otherwise', async () => {
      jest.useFakeTimers();
      const { control, shed } = await writingAt200PerSecondWith('0');
      // Nothing shed yet: a burst is written as it comes, up to the bound on checkouts in flight.
      const writing = await Promise.all(Array.from({ length: 60 }, () => control.admit()));
      expect(await shed()).toBe(0);
      await expect(control.admit()).rejects.toBeInstanceOf(RetryLaterException);
      for (const ticket of writing) ticket.cancel();
      // Shedding: at most 20 are written at once, though in flight there is room for 60.
      const bounded = await Promise.all(Array.from({ length: 20 }, () => control.admit()));
      await expect(control.admit()).rejects.toBeInstanceOf(RetryLaterException);
      expect(control.inFlight).toBe(20);
      for (const ticket of bounded) ticket.cancel();
      // A second after the last order shed, the door writes bursts as they come again.
      await jest.advanceTimersByTimeAsync(1_100);
      const again = await Promise.all(Array.from({ length: 60 }, () => control.admit()));
      expect(control.inFlight).toBe(60);
      for (const ticket of again) ticket.cancel();
    });

    it('keep the others waiting at the door for a write slot while it sheds, not in the write', async () => {
      jest.useFakeTimers();
      const { control, announce, shed } = await writingAt200PerSecondWith('1000');
      await shedOne(control, announce);
      const limit = control.writeLimit; // about 20: 200 writes/s × 100 ms
      expect(limit).toBeGreaterThanOrEqual(15);
      expect(limit).toBeLessThanOrEqual(30);
      const writing = await Promise.all(Array.from({ length: limit }, () => control.admit()));
      const waiting = control.admit();
      expect(control.inFlight).toBe(limit);
      writing[0].accepted('written');
      const ticket = await waiting;
      expect(control.inFlight).toBe(limit + 1);
      expect(await shed()).toBe(1);
      ticket.cancel();
      for (const t of writing.slice(1)) t.cancel();
    });
  });

  describe('the line at the door', () => {
    it('refuses, while the checkouts in flight fill the bound and decisions are late, a request that waited past the write target; the slot goes to the newest', async () => {
      jest.useFakeTimers();
      const { control, announce, shed } = admission({
        ADMISSION_MIN_IN_FLIGHT: '2',
        ADMISSION_MAX_IN_FLIGHT: '2',
        ADMISSION_TARGET_DECISION_MS: '100',
        ADMISSION_TARGET_WRITE_MS: '100',
        ADMISSION_WAIT_MS: '1000',
      });
      (await control.admit()).accepted('a');
      (await control.admit()).accepted('b');
      await jest.advanceTimersByTimeAsync(300); // undecided past twice the target: late
      const late = control.admit().catch((err: unknown) => err);
      await jest.advanceTimersByTimeAsync(150);
      const fresh = control.admit();
      // Refused as the next one came, not after its whole second.
      const outcome = await Promise.race([late, jest.advanceTimersByTimeAsync(1).then(() => 'still waiting')]);
      expect(outcome).toBeInstanceOf(RetryLaterException);
      expect(await shed()).toBe(1);
      announce('a');
      (await fresh).accepted('c');
      expect(control.inFlight).toBe(2);
      announce('b');
      announce('c');
    });

    it('is full, while decisions are late, once more wait than decisions free in the write target (8 at least): the next is refused at once', async () => {
      jest.useFakeTimers();
      const { control, announce, shed } = admission({
        ADMISSION_MIN_IN_FLIGHT: '1',
        ADMISSION_MAX_IN_FLIGHT: '1',
        ADMISSION_TARGET_DECISION_MS: '100',
        ADMISSION_TARGET_WRITE_MS: '100',
        ADMISSION_WAIT_MS: '60000',
      });
      (await control.admit()).accepted('stuck');
      await jest.advanceTimersByTimeAsync(300); // undecided past twice the target: late
      const waiting = Array.from({ length: 8 }, () => control.admit().catch((err: unknown) => err));
      await expect(control.admit()).rejects.toBeInstanceOf(RetryLaterException); // at once: no time passes
      expect(await shed()).toBe(1);
      announce('stuck'); // the newest waiter takes the slot; the others ran past the write target
      await jest.advanceTimersByTimeAsync(200);
      const outcomes = await Promise.all(waiting);
      expect(outcomes.filter((outcome) => outcome instanceof RetryLaterException)).toHaveLength(7);
    });

    it('lets a burst held back only by the write bound wait its turn, newest first once it stands', async () => {
      jest.useFakeTimers();
      const { control, announce, shed } = await writingAt200PerSecondWith('1000');
      await shedOne(control, announce);
      const writing = await Promise.all(Array.from({ length: control.writeLimit }, () => control.admit()));
      const served: string[] = [];
      const first = control.admit().then((ticket) => (served.push('first'), ticket));
      await jest.advanceTimersByTimeAsync(150);
      const second = control.admit().then((ticket) => (served.push('second'), ticket));
      writing[0].accepted('written-0');
      await Promise.resolve();
      await jest.advanceTimersByTimeAsync(0);
      expect(served).toEqual(['second']);
      writing[1].accepted('written-1');
      (await first).cancel();
      (await second).cancel();
      expect(served).toEqual(['second', 'first']);
      expect(await shed()).toBe(1); // shedOne's only
      for (const ticket of writing.slice(2)) ticket.cancel();
    });
  });

  describe('when a decision is announced before its request said the order was accepted', () => {
    // A shared group that fell back: its early requests' orders are committed and may be
    // decided while the requests set aside still run, before `accepted()` is called.
    const fixed = () =>
      admission({ ADMISSION_MIN_IN_FLIGHT: '1', ADMISSION_MAX_IN_FLIGHT: '1', ADMISSION_WAIT_MS: '0' });

    it('frees the slot at once, and takes no decision-time sample from it', async () => {
      jest.useFakeTimers();
      const { control, announce } = fixed();
      const early = await control.admit();
      announce('early');
      early.accepted('early');
      expect(control.inFlight).toBe(0);
      // Nothing of it is left to go stale and be freed later with a sample as long as the deadline.
      await jest.advanceTimersByTimeAsync(20_000);
      (await control.admit()).accepted('next');
      const refused = (await control.admit().catch((err: unknown) => err)) as RetryLaterException;
      expect(refused).toBeInstanceOf(RetryLaterException);
      expect(refused.retryAfterSeconds).toBe(1);
      announce('next');
    });

    it("remembers the decisions it did not know for a while only (another replica's are never accepted here)", async () => {
      jest.useFakeTimers();
      const { control, announce } = admission({ ADMISSION_MIN_IN_FLIGHT: '2', ADMISSION_WAIT_MS: '0' });
      // Past the staleness window (the reconciliation's turn) a remembered decision is forgotten…
      announce('long-ago');
      await jest.advanceTimersByTimeAsync(20_000);
      (await control.admit()).accepted('long-ago');
      expect(control.inFlight).toBe(1);
      // …and at most 10,000 are kept, the oldest forgotten first.
      for (let n = 0; n <= 10_000; n++) announce(`elsewhere-${n}`);
      (await control.admit()).accepted('elsewhere-0');
      expect(control.inFlight).toBe(2);
      announce('long-ago');
      announce('elsewhere-0');
      expect(control.inFlight).toBe(0);
    });
  });

  describe('on a wall clock that moves (NTP steps it, an operator sets it)', () => {
    it('keeps its Retry-After estimate: decision times are taken on the monotonic clock', async () => {
      const { control, announce } = admission({
        ADMISSION_MIN_IN_FLIGHT: '1',
        ADMISSION_MAX_IN_FLIGHT: '1',
        ADMISSION_WAIT_MS: '0',
      });
      const wallClock = jest.spyOn(Date, 'now');
      const start = Date.now();
      wallClock.mockReturnValue(start);
      (await control.admit()).accepted('a');
      wallClock.mockReturnValue(start + 3_600_000); // an hour ahead, a moment later
      announce('a');
      (await control.admit()).accepted('b');
      const refused = (await control.admit().catch((err: unknown) => err)) as RetryLaterException;
      expect(refused).toBeInstanceOf(RetryLaterException);
      expect(refused.retryAfterSeconds).toBe(1);
      announce('b');
    });

    it('does not take an order for stale (past its deadline) because the wall clock jumped', async () => {
      jest.useFakeTimers();
      const { control, staleChecks } = admission({});
      const wallClock = jest.spyOn(Date, 'now');
      const start = Date.now();
      wallClock.mockReturnValue(start);
      (await control.admit()).accepted('recent');
      wallClock.mockReturnValue(start + 3_600_000);
      await jest.advanceTimersByTimeAsync(2_000); // ticks, and a reconciliation's turn
      expect(staleChecks).toEqual([]);
      // On the monotonic clock it does go stale, past the deadline and two sweeps (15 s + 2 × 1 s).
      await jest.advanceTimersByTimeAsync(17_000);
      expect(new Set(staleChecks.map((ids) => ids.join()))).toEqual(new Set(['recent']));
      expect(control.inFlight).toBe(1); // still PENDING, says the database
    });
  });
});

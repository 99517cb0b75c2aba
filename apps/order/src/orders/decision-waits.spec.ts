import { OrderConfig } from '../config';
import type { DecisionListener, DecisionSubscriber } from './decision-listener';
import { DecisionWaits } from './decision-waits';

function start(maxWaiters: number) {
  const config = OrderConfig.parse({
    PORT: '3000',
    DATABASE_URL: 'postgres://u:p@h/db',
    AMQP_URL: 'amqp://u:p@h/v',
    PREFER_WAIT_MAX_WAITERS: String(maxWaiters),
  });
  let subscriber: DecisionSubscriber | undefined;
  const listener = { subscribe: (s: DecisionSubscriber) => ((subscriber = s), () => undefined) };
  const waits = new DecisionWaits(config, listener as unknown as DecisionListener);
  waits.onApplicationBootstrap();
  return { waits, listener: () => subscriber! };
}

/** Whether `promise` settled by now (after the callbacks already queued ran). */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  void promise.then(() => (done = true));
  await new Promise((resolve) => setImmediate(resolve));
  return done;
}

describe('waiting for a decision (Prefer: wait)', () => {
  it('wakes only the waiters of the order announced as decided', async () => {
    const { waits, listener } = start(2);
    const a = waits.next('a', 60_000);
    const b = waits.next('b', 60_000);
    listener().decided('a');
    expect(await settled(a)).toBe(true);
    expect(await settled(b)).toBe(false);
    waits.onModuleDestroy();
    expect(await settled(b)).toBe(true);
  });

  it('wakes every waiter when announcements may have been missed (the LISTEN connection came back)', async () => {
    const { waits, listener } = start(2);
    const both = Promise.all([waits.next('a', 60_000), waits.next('b', 60_000)]);
    listener().resync();
    expect(await settled(both)).toBe(true);
  });

  it('gives up after the wait, and has room for at most PREFER_WAIT_MAX_WAITERS at once', async () => {
    const { waits } = start(1);
    expect(waits.hasRoom).toBe(true);
    const waiting = waits.next('a', 20);
    expect(waits.hasRoom).toBe(false);
    await waiting;
    expect(waits.hasRoom).toBe(true);
  });

  it('says whether it was woken by an announcement, and withdraws a waiter whose wait is stopped', async () => {
    const { waits, listener } = start(1);
    const announced = waits.next('a', 60_000);
    listener().decided('a');
    expect(await announced).toBe(true);
    expect(await waits.next('a', 1)).toBe(false); // the time ran out
    const stop = new AbortController();
    const stopped = waits.next('b', 60_000, stop.signal);
    expect(waits.hasRoom).toBe(false);
    stop.abort();
    expect(await stopped).toBe(false);
    expect(waits.hasRoom).toBe(true);
    expect(await waits.next('c', 60_000, stop.signal)).toBe(false); // stopped already: no wait
    expect(waits.hasRoom).toBe(true);
  });
});

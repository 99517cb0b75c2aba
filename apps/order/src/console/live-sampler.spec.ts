import type { ServerResponse } from 'node:http';
import { Counter, Registry } from 'prom-client';
import type { Queryable } from '@shop/service-kit';
import { LiveSampler } from './live-sampler';
import { SseHub } from './sse-hub';

/** A stream that keeps what it was sent (the hub writes to it like to a real response). */
function stream(): ServerResponse & { sent: string } {
  const fake = {
    sent: '',
    writableLength: 0,
    writeHead: () => fake,
    write: (text: string) => ((fake.sent += text), true),
    once: () => fake,
    end: () => undefined,
    destroy: () => undefined,
  };
  return fake as unknown as ServerResponse & { sent: string };
}

describe("the console's sampler", () => {
  let registry: Registry;
  let decisions: Counter<'outcome' | 'reason'>;
  let shed: Counter;
  let queries: unknown[][];
  const db: Queryable = {
    query: <T>(_sql: string, parameters: unknown[] = []) => {
      queries.push(parameters);
      return Promise.resolve([] as T);
    },
  };

  beforeEach(() => {
    registry = new Registry();
    decisions = new Counter({
      name: 'checkout_decisions_total',
      help: 'h',
      labelNames: ['outcome', 'reason'],
      registers: [registry],
    });
    shed = new Counter({ name: 'checkout_admission_shed_total', help: 'h', registers: [registry] });
    queries = [];
  });

  it("reads the process's own counters and admission state each second, as rates", async () => {
    const hub = new SseHub(4);
    const sampler = new LiveSampler(registry, { inFlight: 7, limit: 40 }, db, hub);
    await sampler.tick(10_000);
    decisions.inc({ outcome: 'commit', reason: 'none' }, 30);
    decisions.inc({ outcome: 'abort', reason: 'TIMEOUT' }, 4);
    decisions.inc({ outcome: 'abort', reason: 'OUT_OF_STOCK' }, 6);
    shed.inc(5);
    const sample = await sampler.tick(12_000); // two seconds later
    expect(sample).toEqual({
      at: new Date(12_000).toISOString(),
      decidedPerSecond: 20,
      inFlight: 7,
      admissionBound: 40,
      shedPerSecond: 2.5,
      timeoutsPerSecond: 2,
      timeouts: 4,
    });
    expect(sampler.history).toHaveLength(2);
  });

  it('queries nothing while no page is open, and once a tick whatever the number of pages', async () => {
    const hub = new SseHub(8);
    const sampler = new LiveSampler(registry, { inFlight: 0, limit: 20 }, db, hub);
    await sampler.tick(1_000);
    sampler.decided('a0000000-0000-4000-8000-000000000000'); // nobody watches: not kept
    await sampler.tick(2_000);
    expect(queries).toHaveLength(0);
    const pages = [stream(), stream(), stream(), stream(), stream()];
    for (const page of pages) hub.open(page, {});
    sampler.decided('b0000000-0000-4000-8000-000000000000');
    await sampler.tick(3_000);
    await sampler.tick(4_000);
    expect(queries).toHaveLength(2);
    expect(queries[0][1]).toEqual(['b0000000-0000-4000-8000-000000000000']);
    expect(queries[1][1]).toEqual([]); // each decided id goes out once
    for (const page of pages) expect(page.sent.match(/event: metrics/g)).toHaveLength(2);
  });

  it('keeps five minutes of samples for the charts', async () => {
    const sampler = new LiveSampler(registry, { inFlight: 0, limit: 20 }, db, new SseHub(1));
    for (let second = 0; second < 310; second += 1) await sampler.tick(second * 1_000);
    expect(sampler.history).toHaveLength(300);
    expect(sampler.history[0].at).toBe(new Date(10_000).toISOString());
  });
});

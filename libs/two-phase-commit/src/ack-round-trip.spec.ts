import { AckRoundTrip } from './ack-round-trip';

describe('AckRoundTrip', () => {
  it('gives no slack before any ack came back', () => {
    expect(new AckRoundTrip(60).timeoutSeconds).toBe(0);
  });

  it('follows round trips like a retransmission timer: steady ones give little slack, a backlog a lot', () => {
    const steady = new AckRoundTrip(60);
    for (let i = 0; i < 50; i++) steady.observe(0.05);
    expect(steady.timeoutSeconds).toBeGreaterThanOrEqual(0.05);
    expect(steady.timeoutSeconds).toBeLessThan(0.1);

    // Acks queued behind a backlog come back seconds late: re-sends wait at least that long.
    for (let i = 0; i < 20; i++) steady.observe(5);
    expect(steady.timeoutSeconds).toBeGreaterThan(5);
  });

  it('ignores impossible samples', () => {
    const timer = new AckRoundTrip(60);
    timer.observe(Number.NaN);
    timer.observe(-1);
    expect(timer.timeoutSeconds).toBe(0);
  });

  it('is bounded: a round trip that took an outage holds later re-sends back by at most maxSeconds (bug 6)', () => {
    const timer = new AckRoundTrip(60);
    timer.observe(0.05);
    timer.observe(3_600); // an ack that came back an hour after its decision
    expect(timer.timeoutSeconds).toBeLessThanOrEqual(60);
    const first = new AckRoundTrip(60);
    first.observe(100_000);
    expect(first.timeoutSeconds).toBe(60);
  });
});

import { AckRoundTrip } from './outgoing';

describe('AckRoundTrip', () => {
  it('gives no slack before any ack came back', () => {
    expect(new AckRoundTrip().timeoutSeconds).toBe(0);
  });

  it('follows round trips like a retransmission timer: steady ones give little slack, a backlog a lot', () => {
    const steady = new AckRoundTrip();
    for (let i = 0; i < 50; i++) steady.observe(0.05);
    expect(steady.timeoutSeconds).toBeGreaterThanOrEqual(0.05);
    expect(steady.timeoutSeconds).toBeLessThan(0.1);

    // Acks queued behind a backlog come back seconds late: re-sends wait at least that long.
    for (let i = 0; i < 20; i++) steady.observe(5);
    expect(steady.timeoutSeconds).toBeGreaterThan(5);
  });

  it('ignores impossible samples', () => {
    const timer = new AckRoundTrip();
    timer.observe(Number.NaN);
    timer.observe(-1);
    expect(timer.timeoutSeconds).toBe(0);
  });
});

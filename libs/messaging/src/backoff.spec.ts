import { backoffMs } from './backoff';

const BOUNDS = { baseMs: 100, capMs: 5_000 };
const lowest = () => 0;
const highest = () => 1;

describe('backoffMs', () => {
  it('waits between half and all of baseMs before the first retry', () => {
    expect(backoffMs(0, BOUNDS, lowest)).toBe(50);
    expect(backoffMs(0, BOUNDS, highest)).toBe(100);
  });

  it('doubles the ceiling with each retry', () => {
    expect([1, 2, 3, 4, 5].map((retry) => backoffMs(retry, BOUNDS, highest))).toEqual([200, 400, 800, 1_600, 3_200]);
  });

  it('never waits longer than capMs, however many retries (no overflow)', () => {
    for (const retry of [6, 7, 31, 1_000, Number.MAX_SAFE_INTEGER]) {
      expect(backoffMs(retry, BOUNDS, highest)).toBe(5_000);
      expect(backoffMs(retry, BOUNDS, lowest)).toBe(2_500);
    }
  });

  it('treats a negative retry as the first', () => {
    expect(backoffMs(-3, BOUNDS, highest)).toBe(100);
  });

  it('jitters within half to all of the ceiling, so clients that failed together spread out', () => {
    const waits = Array.from({ length: 200 }, () => backoffMs(3, BOUNDS));
    expect(Math.min(...waits)).toBeGreaterThanOrEqual(400);
    expect(Math.max(...waits)).toBeLessThanOrEqual(800);
    expect(new Set(waits).size).toBeGreaterThan(10);
  });
});

import { afterFailure, checkRetryPolicy, retryDelays, RetryPolicy } from './retry-policy';

const policy: RetryPolicy = {
  maxAttempts: 4,
  delaysMs: [100, 500, 500],
  isTransient: (err) => err instanceof Error && err.message === 'outage',
};

describe('retry policy', () => {
  it("waits each attempt's delay, the last one repeating, and dead-letters after maxAttempts", () => {
    const failure = new Error('bug');
    expect([1, 2, 3].map((attempt) => afterFailure({ ...policy, delaysMs: [100, 500] }, attempt, failure))).toEqual([
      { retry: true, delayMs: 100, nextAttempt: 2, transient: false },
      { retry: true, delayMs: 500, nextAttempt: 3, transient: false },
      { retry: true, delayMs: 500, nextAttempt: 4, transient: false },
    ]);
    expect(afterFailure(policy, 4, failure)).toEqual({ retry: false, reason: 'handler failed 4 times: bug' });
  });

  it('retries a transient failure after the longest delay without using up the attempt, even past maxAttempts', () => {
    expect(afterFailure(policy, 9, new Error('outage'))).toEqual({
      retry: true,
      delayMs: 500,
      nextAttempt: 9,
      transient: true,
    });
    // never in a tight loop: at least 100 ms
    expect(afterFailure({ ...policy, delaysMs: [20] }, 1, new Error('outage'))).toMatchObject({ delayMs: 100 });
  });

  it('names every delay a retry can wait once, shortest first: one retry queue each', () => {
    expect(retryDelays(policy)).toEqual([100, 500]);
    expect(retryDelays({ maxAttempts: 3, delaysMs: [50, 20] })).toEqual([20, 50, 100]);
  });

  it('refuses a policy it could not follow', () => {
    expect(() => checkRetryPolicy(policy)).not.toThrow();
    expect(() => checkRetryPolicy({ ...policy, delaysMs: [] })).toThrow(/no delaysMs/);
    expect(() => checkRetryPolicy({ ...policy, delaysMs: [100, 2.5] })).toThrow(/2.5 is not/);
    expect(() => checkRetryPolicy({ ...policy, delaysMs: [0] })).toThrow(/0 is not/);
    expect(() => checkRetryPolicy({ ...policy, maxAttempts: 0 })).toThrow(/maxAttempts/);
  });
});

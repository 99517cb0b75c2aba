import { PeriodicTask } from './periodic-task';

/** The runs of the test, finished at its end (stop waits for one in progress). */
const pending: Array<{ resolve: () => void; reject: (err: Error) => void }> = [];

/** A run we finish by hand: each call of `run` returns a promise, resolved or rejected when the test says. */
function controlledRuns() {
  let running = 0;
  let maxRunning = 0;
  let started = 0;
  const run = () => {
    started += 1;
    running += 1;
    maxRunning = Math.max(maxRunning, running);
    return new Promise<void>((resolve, reject) => pending.push({ resolve, reject })).finally(() => (running -= 1));
  };
  return {
    run,
    get started() {
      return started;
    },
    get maxRunning() {
      return maxRunning;
    },
    finish: () => pending.shift()!.resolve(),
    fail: (err: Error) => pending.shift()!.reject(err),
  };
}

const INTERVAL_MS = 1_000;

describe('PeriodicTask', () => {
  const warnings: string[] = [];
  const logger = { warn: (message: string) => warnings.push(message) };
  let task: PeriodicTask | undefined;

  beforeEach(() => {
    jest.useFakeTimers();
    warnings.length = 0;
  });
  afterEach(async () => {
    const stopping = task?.stop();
    for (const run of pending.splice(0)) run.resolve();
    await stopping;
    task = undefined;
    jest.useRealTimers();
  });

  it('runs every interval after start, not at once', async () => {
    let runs = 0;
    task = new PeriodicTask('count', INTERVAL_MS, () => void (runs += 1), logger);
    task.start();
    await jest.advanceTimersByTimeAsync(INTERVAL_MS - 1);
    expect(runs).toBe(0);
    await jest.advanceTimersByTimeAsync(1);
    expect(runs).toBe(1);
    await jest.advanceTimersByTimeAsync(2 * INTERVAL_MS);
    expect(runs).toBe(3);
  });

  it('never overlaps itself: a run longer than the interval delays the next one', async () => {
    const runs = controlledRuns();
    task = new PeriodicTask('slow', INTERVAL_MS, runs.run, logger);
    task.start();
    await jest.advanceTimersByTimeAsync(INTERVAL_MS);
    expect(task.busy).toBe(true);
    await jest.advanceTimersByTimeAsync(5 * INTERVAL_MS);
    expect(runs.started).toBe(1);
    runs.finish();
    await jest.advanceTimersByTimeAsync(0);
    expect(task.busy).toBe(false);
    await jest.advanceTimersByTimeAsync(INTERVAL_MS);
    expect(runs.started).toBe(2);
    expect(runs.maxRunning).toBe(1);
  });

  it('runs at once when woken, and once more right after the run in progress however often woken during it', async () => {
    const runs = controlledRuns();
    task = new PeriodicTask('woken', INTERVAL_MS, runs.run, logger);
    task.start();
    task.wake();
    await jest.advanceTimersByTimeAsync(0);
    expect(runs.started).toBe(1);
    task.wake();
    task.wake();
    task.wake();
    runs.finish();
    await jest.advanceTimersByTimeAsync(0);
    expect(runs.started).toBe(2);
    runs.finish();
    await jest.advanceTimersByTimeAsync(INTERVAL_MS - 1);
    expect(runs.started).toBe(2); // the woken run restarted the interval
    expect(runs.maxRunning).toBe(1);
  });

  it('does nothing when woken before start or after stop', async () => {
    let runs = 0;
    task = new PeriodicTask('idle', INTERVAL_MS, () => void (runs += 1), logger);
    task.wake();
    await jest.advanceTimersByTimeAsync(3 * INTERVAL_MS);
    expect(runs).toBe(0);
    task.start();
    await task.stop();
    task.wake();
    await jest.advanceTimersByTimeAsync(3 * INTERVAL_MS);
    expect(runs).toBe(0);
  });

  it('stop waits for the run in progress, and no run follows', async () => {
    const runs = controlledRuns();
    task = new PeriodicTask('stopping', INTERVAL_MS, runs.run, logger);
    task.start();
    await jest.advanceTimersByTimeAsync(INTERVAL_MS);
    task.wake(); // asks for one more run right after: stop cancels it too
    let stopped = false;
    const stopping = task.stop().then(() => (stopped = true));
    await jest.advanceTimersByTimeAsync(0);
    expect(stopped).toBe(false);
    runs.finish();
    await stopping;
    await jest.advanceTimersByTimeAsync(5 * INTERVAL_MS);
    expect(runs.started).toBe(1);
  });

  it('logs a failed run and comes back at the next interval', async () => {
    const runs = controlledRuns();
    task = new PeriodicTask('flaky', INTERVAL_MS, runs.run, logger);
    task.start();
    await jest.advanceTimersByTimeAsync(INTERVAL_MS);
    runs.fail(new Error('database gone'));
    await jest.advanceTimersByTimeAsync(0);
    expect(warnings).toEqual(['flaky failed: database gone']);
    await jest.advanceTimersByTimeAsync(INTERVAL_MS);
    expect(runs.started).toBe(2);
  });
});

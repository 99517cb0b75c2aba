import { WaitingLine } from './waiting-line';

afterEach(() => jest.useRealTimers());

/** Serves `count` slots, one at a time, and says which waiters got them, in order. */
function serveSlots(line: WaitingLine<string>, count: number) {
  let left = count;
  let slot = 0;
  line.serve(
    () => left-- > 0,
    () => `slot-${slot++}`,
  );
}

describe('the waiting line at the door', () => {
  it('serves the oldest first while the line moves', async () => {
    jest.useFakeTimers();
    const line = new WaitingLine<string>(100);
    const served: string[] = [];
    const waiters = ['a', 'b', 'c'].map((name) => line.wait(1_000).then((slot) => served.push(`${name}:${slot}`)));
    await jest.advanceTimersByTimeAsync(50); // the oldest has waited 50 ms: under 100, it moves
    serveSlots(line, 2);
    await Promise.resolve();
    expect(served).toEqual(['a:slot-0', 'b:slot-1']);
    expect(line.length).toBe(1);
    line.close();
    await Promise.all(waiters);
  });

  it('serves the newest first once its oldest has waited past the standing time, and the oldest run out their wait', async () => {
    jest.useFakeTimers();
    const line = new WaitingLine<string>(100);
    const answers = new Map<string, string | undefined>();
    const wait = (name: string) => line.wait(1_000).then((slot) => answers.set(name, slot));
    const old = ['old-1', 'old-2'].map(wait);
    await jest.advanceTimersByTimeAsync(150); // they stand
    const fresh = ['new-1', 'new-2'].map(wait);
    serveSlots(line, 2);
    await Promise.resolve();
    expect([...answers]).toEqual([
      ['new-2', 'slot-0'],
      ['new-1', 'slot-1'],
    ]);
    await jest.advanceTimersByTimeAsync(850); // old-1 and old-2 reach their 1,000 ms
    expect(answers.get('old-1')).toBeUndefined();
    expect(answers.has('old-1') && answers.has('old-2')).toBe(true);
    expect(line.length).toBe(0);
    await Promise.all([...old, ...fresh]);
  });

  it('refuses at once with no wait, and refuses everyone waiting when it closes', async () => {
    const line = new WaitingLine<string>(100);
    await expect(line.wait(0)).resolves.toBeUndefined();
    const waiting = line.wait(60_000);
    expect(line.length).toBe(1);
    line.close();
    await expect(waiting).resolves.toBeUndefined();
    expect(line.length).toBe(0);
  });
});

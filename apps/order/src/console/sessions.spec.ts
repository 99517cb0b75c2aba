import { ConsoleSessions } from './sessions';

describe("the console's sessions", () => {
  let now = 0;
  const clock = () => now;
  beforeEach(() => (now = 1_000_000));

  it('opens a session with an unguessable id and knows who signed in', () => {
    const sessions = new ConsoleSessions(60_000, clock);
    const id = sessions.open('abc123');
    expect(id).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(sessions.open('abc123')).not.toBe(id);
    expect(sessions.touch(id)?.admin).toBe('abc123');
    expect(sessions.touch('not-a-session')).toBeUndefined();
    expect(sessions.touch(undefined)).toBeUndefined();
  });

  it('ends a session after the idle time without a request, and each request restarts it', () => {
    const sessions = new ConsoleSessions(60_000, clock);
    const id = sessions.open('abc123');
    now += 59_999;
    expect(sessions.touch(id)).toBeDefined(); // restarts the idle time
    now += 59_999;
    expect(sessions.touch(id)).toBeDefined();
    now += 60_000;
    expect(sessions.touch(id)).toBeUndefined();
    now += 1;
    expect(sessions.touch(id)).toBeUndefined(); // forgotten, not revived
  });

  it('ends a session at sign-out', () => {
    const sessions = new ConsoleSessions(60_000, clock);
    const id = sessions.open('abc123');
    sessions.close(id);
    expect(sessions.touch(id)).toBeUndefined();
  });

  it('forgets idle sessions as new ones open, and holds at most a thousand', () => {
    const sessions = new ConsoleSessions(60_000, clock);
    const first = sessions.open('a');
    now += 60_000;
    sessions.open('b');
    expect(sessions.size).toBe(1);
    expect(sessions.touch(first)).toBeUndefined();
    for (let i = 0; i < 1_100; i += 1) sessions.open(`admin${i}`);
    expect(sessions.size).toBe(1_000);
  });
});

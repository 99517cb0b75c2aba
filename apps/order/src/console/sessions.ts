import { randomBytes } from 'node:crypto';

/** One signed-in operator: whose token (its fingerprint, for the audit log) and when last seen. */
export interface ConsoleSession {
  admin: string;
  lastSeenMs: number;
}

/** At most this many sessions at once: the oldest is forgotten first (a sign-in flood cannot grow memory). */
const MAX_SESSIONS = 1_000;

/**
 * The console's server-side sessions, in this process's memory: a random id (the cookie's only
 * content) → who signed in. A session ends after `idleMs` without a request, at sign-out, or
 * when the process restarts; the cookie itself has no expiry (it ends with the browser).
 */
export class ConsoleSessions {
  private readonly sessions = new Map<string, ConsoleSession>();

  constructor(
    private readonly idleMs: number,
    private readonly nowMs: () => number = Date.now,
  ) {}

  /** A new session for `admin`; answers its id. */
  open(admin: string): string {
    this.forgetIdle();
    const id = randomBytes(32).toString('base64url');
    this.sessions.set(id, { admin, lastSeenMs: this.nowMs() });
    while (this.sessions.size > MAX_SESSIONS) this.sessions.delete(this.sessions.keys().next().value!);
    return id;
  }

  /** The live session `id` names, its idle time restarted; undefined if none (or it expired). */
  touch(id: string | undefined): ConsoleSession | undefined {
    if (id === undefined) return undefined;
    const session = this.sessions.get(id);
    if (!session) return undefined;
    const now = this.nowMs();
    if (now - session.lastSeenMs >= this.idleMs) {
      this.sessions.delete(id);
      return undefined;
    }
    session.lastSeenMs = now;
    // Most recently seen last: the map's order is the eviction order.
    this.sessions.delete(id);
    this.sessions.set(id, session);
    return session;
  }

  close(id: string | undefined): void {
    if (id !== undefined) this.sessions.delete(id);
  }

  get size(): number {
    return this.sessions.size;
  }

  private forgetIdle(): void {
    const now = this.nowMs();
    for (const [id, session] of this.sessions) {
      if (now - session.lastSeenMs < this.idleMs) break; // the rest were seen later
      this.sessions.delete(id);
    }
  }
}

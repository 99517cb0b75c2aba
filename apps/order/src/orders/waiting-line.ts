interface Waiter<T> {
  since: number; // when it began to wait (ms, monotonic)
  settle: (value: T | undefined) => void;
}

/**
 * Requests waiting at the door for a slot, each for at most the time it is given. While the line
 * moves, first come first served. Once its oldest has waited past `standingMs` it is a standing
 * queue (more is offered than served, not a passing burst) and it serves the newest first: a
 * freed slot goes to a request that can still be answered in time, and those at the back, which
 * could only be answered late, run out their wait and are refused (adaptive LIFO, as in
 * Facebook's "Fail at scale"). Without it, under overload every accepted order would first wait
 * out the whole line.
 */
export class WaitingLine<T> {
  private readonly waiters: Array<Waiter<T>> = []; // oldest first

  constructor(private readonly standingMs: number) {}

  get length(): number {
    return this.waiters.length;
  }

  /** Resolves with what `serve` hands over, or undefined after `maxWaitMs` (or when the line closes). */
  wait(maxWaitMs: number): Promise<T | undefined> {
    if (maxWaitMs === 0) return Promise.resolve(undefined);
    return new Promise<T | undefined>((resolve) => {
      const waiter: Waiter<T> = {
        since: performance.now(),
        settle: (value) => {
          clearTimeout(timer);
          resolve(value);
        },
      };
      const timer = setTimeout(() => {
        const index = this.waiters.indexOf(waiter); // the oldest run out first: at the front
        if (index >= 0) this.waiters.splice(index, 1);
        resolve(undefined);
      }, maxWaitMs);
      this.waiters.push(waiter);
    });
  }

  /** Hands `take()` to the next waiter while `hasRoom()`: the oldest while the line moves, the newest once it stands. */
  serve(hasRoom: () => boolean, take: () => T): void {
    while (this.waiters.length > 0 && hasRoom()) {
      const standing = performance.now() - this.waiters[0].since > this.standingMs;
      const waiter = standing ? this.waiters.pop()! : this.waiters.shift()!;
      waiter.settle(take());
    }
  }

  /** Refuses those who have waited longer than `ms` (they could only be answered late). */
  refuseOlderThan(ms: number): void {
    const before = performance.now() - ms;
    while (this.waiters.length > 0 && this.waiters[0].since < before) this.waiters.shift()!.settle(undefined);
  }

  /** Refuses everyone waiting (the process is stopping). */
  close(): void {
    for (const waiter of this.waiters.splice(0)) waiter.settle(undefined);
  }
}

const RISE_SMOOTHING = 0.5;
const FALL_SMOOTHING = 0.1;
/** While the door sheds, at least this many orders are written at once, */
export const MIN_WRITING = 8;
/** and the bound holds until this long after the last order shed. */
const SHEDDING_HOLDS_MS = 1_000;

/**
 * The bound on orders being written at once (slot taken, not yet committed) while the door sheds:
 * writes per second × the write target, so that an accepted order is answered in about that
 * time and the queue stays at the door. Not shedding, unbounded: a burst (a cold start's) is
 * written as it comes.
 */
export class WriteBound {
  private writtenSinceTick = 0;
  private rate = 0; // orders written per second (0: none measured yet)
  private lastShed = -Infinity;

  constructor(private readonly targetMs: number) {}

  /** An order was written (or its request wrote nothing): its write slot is free. */
  written(): void {
    this.writtenSinceTick += 1;
  }

  /** The door refused an order. */
  shed(): void {
    this.lastShed = performance.now();
  }

  get limit(): number {
    if (this.rate === 0 || performance.now() - this.lastShed > SHEDDING_HOLDS_MS) return Infinity;
    return Math.max(MIN_WRITING, Math.round((this.rate * this.targetMs) / 1000));
  }

  /**
   * Follows the write rate over the last `elapsedMs`: up quickly (a rate measured is one served)
   * from boot's 0; down slowly, and only while the bound holds writes back (`writing` at it).
   */
  tick(elapsedMs: number, writing: number): void {
    const written = (this.writtenSinceTick * 1000) / elapsedMs;
    this.writtenSinceTick = 0;
    if (written > this.rate) this.rate += (this.rate === 0 ? 1 : RISE_SMOOTHING) * (written - this.rate);
    else if (writing >= this.limit) this.rate += FALL_SMOOTHING * (written - this.rate);
  }
}

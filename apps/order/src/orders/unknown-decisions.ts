/** At most this many decided orders this process did not know are remembered. */
const REMEMBER_DECIDED = 10_000;

/**
 * Decisions announced for orders this process did not know (another replica's, or its own whose
 * `accepted()` is still to come): remembered oldest first, until they are taken, forgotten as
 * stale (`forgetBefore`: the reconciliation's turn by then) or pushed out beyond REMEMBER_DECIDED.
 */
export class UnknownDecisions {
  private readonly announced = new Map<string, number>(); // id → when announced (ms, monotonic)

  remember(orderId: string): void {
    this.announced.delete(orderId); // re-announced: now the newest
    this.announced.set(orderId, performance.now());
    if (this.announced.size > REMEMBER_DECIDED) this.announced.delete(this.announced.keys().next().value!);
  }

  /** Whether `orderId` was announced decided (and forgets it). */
  take(orderId: string): boolean {
    return this.announced.delete(orderId);
  }

  forgetBefore(time: number): void {
    for (const [id, announcedAt] of this.announced) {
      if (announcedAt >= time) break; // oldest first
      this.announced.delete(id);
    }
  }
}

/**
 * How long acks take to come back (from the decision to the ack recorded), smoothed like TCP's
 * retransmission timer (RFC 6298): a re-send waits this much beyond its backoff, so acks that are
 * merely queued behind a backlog are not answered with more decisions for the same backlog.
 * Bounded by `maxSeconds` (like RFC 6298's upper bound): an ack that took an outage to come back
 * must not hold every later re-send back by as long.
 */
export class AckRoundTrip {
  private smoothed: number | undefined;
  private variation = 0;

  constructor(private readonly maxSeconds: number) {}

  /**
   * A round trip of a decision sent once (Karn: a re-sent one's ack could answer either send).
   * Called once its ack is committed, so a batch rolled back and run again counts it once.
   */
  observe(seconds: number): void {
    if (!(seconds >= 0)) return;
    const sample = Math.min(seconds, this.maxSeconds);
    if (this.smoothed === undefined) {
      this.smoothed = sample;
      this.variation = sample / 2;
      return;
    }
    this.variation += 0.25 * (Math.abs(this.smoothed - sample) - this.variation);
    this.smoothed += 0.125 * (sample - this.smoothed);
  }

  /** The slack to give an unacked decision before re-sending it, in seconds (0 before any ack; at most `maxSeconds`). */
  get timeoutSeconds(): number {
    return this.smoothed === undefined ? 0 : Math.min(this.maxSeconds, this.smoothed + 4 * this.variation);
  }
}

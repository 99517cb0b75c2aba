/** An exponential backoff: the first wait is `baseMs`, each next one doubles, up to `capMs`. */
export interface Backoff {
  baseMs: number;
  capMs: number;
}

/**
 * The wait before retry number `retry` (0 for the first): `baseMs` × 2^retry, capped at `capMs`,
 * then jittered to 50–100 % of that, so clients that failed together do not come back together.
 * The one backoff of the project: reconnects, re-sends, relay retries and re-consumes use it.
 */
export function backoffMs(retry: number, { baseMs, capMs }: Backoff, random: () => number = Math.random): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(Math.max(retry, 0), 30));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

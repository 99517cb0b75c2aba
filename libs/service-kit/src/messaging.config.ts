import { z } from 'zod';

/** How the service consumes, retries and relays its messages, and how long it keeps their records. */
export const MessagingConfig = z.object({
  /** Unacked deliveries per consumer: the batch in hand and the next one gathering. */
  AMQP_PREFETCH: z.coerce.number().int().min(1).max(1000).default(100),
  /**
   * At most this many messages are handled in one database transaction (`Transactions.runBatch`).
   * Counted in messages, not deliveries: a delivery packs up to MESSAGE_PACK_MAX. A batch is only
   * as large as what waits, so a large bound costs nothing at low load, and under load it shares
   * one commit among many checkouts (at 50, about one pack a transaction, the coordinator fell
   * behind its votes: docs/performance.md).
   */
  MESSAGE_BATCH_SIZE: z.coerce.number().int().min(1).max(1000).default(1000),
  /** Handler attempts before a failing message is dead-lettered. */
  MESSAGE_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(50).default(5),
  /**
   * At most this many messages of one routing key travel in one broker message (packed). 1 sends
   * each alone: set it while services older than packing still read the queues (a rolling upgrade).
   */
  MESSAGE_PACK_MAX: z.coerce.number().int().min(1).max(100).default(50),
  OUTBOX_POLL_INTERVAL_MS: z.coerce.number().int().min(10).default(1000),
  OUTBOX_RETENTION_HOURS: z.coerce.number().min(0).default(24),
  INBOX_RETENTION_HOURS: z.coerce
    .number()
    .min(0)
    .default(7 * 24),
});
export type MessagingConfig = z.infer<typeof MessagingConfig>;

/** The handlers take one batch at a time: prefetch beyond two (the one in hand, the next one gathering) would only wait in memory. */
export function messagingConfigProblems(config: MessagingConfig): string[] {
  return config.AMQP_PREFETCH > 2 * config.MESSAGE_BATCH_SIZE
    ? [
        `  AMQP_PREFETCH: ${config.AMQP_PREFETCH} exceeds two batches (2 × MESSAGE_BATCH_SIZE ${config.MESSAGE_BATCH_SIZE}): ` +
          `the handlers take one batch at a time`,
      ]
    : [];
}

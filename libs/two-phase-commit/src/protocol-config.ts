import { z } from 'zod';

/** Protocol timings, from the environment, with defaults that suit a local stack. */
export const ProtocolConfig = z.object({
  /** How long the coordinator waits for all votes before deciding ABORT (reason TIMEOUT). */
  PREPARE_TIMEOUT_MS: z.coerce.number().int().min(100).max(3_600_000).default(15_000),
  /** How often sweepers look for expired, unacked or in-doubt transactions. */
  SWEEP_INTERVAL_MS: z.coerce.number().int().min(10).max(600_000).default(1_000),
  /** First re-send of an unacked decision; doubles (with jitter) up to the cap. */
  DECISION_RESEND_BASE_MS: z.coerce.number().int().min(10).default(10_000),
  DECISION_RESEND_CAP_MS: z.coerce.number().int().min(10).default(120_000),
  /** A participant holding PREPARED this long asks the coordinator what was decided... */
  INQUIRY_AFTER_MS: z.coerce.number().int().min(10).default(30_000),
  /** ...and asks again this often until it hears. */
  INQUIRY_EVERY_MS: z.coerce.number().int().min(10).default(15_000),
});
export type ProtocolConfig = z.infer<typeof ProtocolConfig>;

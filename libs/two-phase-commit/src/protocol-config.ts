import { z } from 'zod';
import { PARTICIPANTS } from '@shop/contracts';

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

/** A comma-separated list of participants ('' for none), each named once. */
const participantList = z
  .string()
  .transform((list) =>
    list
      .split(',')
      .map((name) => name.trim())
      .filter(Boolean),
  )
  .pipe(z.array(z.enum(PARTICIPANTS)).refine((names) => new Set(names).size === names.length, 'each participant once'));

/** The coordinator's settings: the protocol's, and the order in which it asks. */
export const CoordinatorConfig = ProtocolConfig.extend({
  /**
   * The participants asked to prepare first; the others are asked once these all said yes. Money
   * before stock (`payment`): an order that cannot be paid never holds stock, so a customer
   * without money cannot keep the shop's stock from others (one hop more per checkout). Empty:
   * all at once.
   */
  PREPARE_FIRST: participantList.default([]),
});
export type CoordinatorConfig = z.infer<typeof CoordinatorConfig>;

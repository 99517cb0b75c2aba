import { z } from 'zod';
import { LIMITS, OrderLine } from '../messages/common';

/** What the inventory must reserve: every line, or none. */
export const prepareRequest = z.strictObject({
  items: z
    .array(OrderLine)
    .min(1)
    .max(LIMITS.maxLinesPerOrder)
    .refine((items) => new Set(items.map((item) => item.sku)).size === items.length, 'each sku at most once'),
});

/** Why the inventory may vote no (besides the protocol's own reasons). */
export const noVoteReasons = ['OUT_OF_STOCK', 'UNKNOWN_SKU'] as const;

import { z } from 'zod';
import { CustomerId, LIMITS, OrderLine, PARTICIPANT_ORDER_FIELDS, Sku } from '@shop/contracts';

export const PlaceOrderBody = z
  .strictObject({
    /** Optional: the customer is the token's; if given, it must be that one (403 otherwise). */
    customerId: CustomerId.optional(),
    items: z.array(OrderLine).min(1).max(LIMITS.maxLinesPerOrder),
    /** What the participants' contract modules add (libs/contracts/src/participants/<name>.ts, `orderFields`). */
    ...PARTICIPANT_ORDER_FIELDS,
  })
  .refine((body) => new Set(body.items.map((item) => item.sku)).size === body.items.length, {
    message: 'each sku may appear only once',
    path: ['items'],
  })
  .meta({ id: 'PlaceOrderBody' });
export type PlaceOrderBody = z.infer<typeof PlaceOrderBody>;

/** What an order request asks for (the whole validated body), once its customer is known (the token's). */
export type OrderRequest = Omit<PlaceOrderBody, 'customerId'> & { customerId: string };

export const OrderIdParam = z.uuid();

/** Any visible ASCII, as most APIs that take an Idempotency-Key accept. */
export const IdempotencyKey = z.string().regex(/^[\x21-\x7e]{1,200}$/, '1 to 200 visible ASCII characters');

export const OrderStatus = z.enum(['PENDING', 'CONFIRMED', 'CANCELLED']);
export type OrderStatus = z.infer<typeof OrderStatus>;

export const OrderView = z
  .object({
    id: z.uuid(),
    customerId: CustomerId,
    items: z.array(z.object({ sku: Sku, quantity: z.int(), unitPrice: z.int(), lineTotal: z.int() })),
    total: z.int().describe('integer minor units'),
    currency: z.string(),
    status: OrderStatus,
    reason: z.string().optional().describe('why it was cancelled'),
    createdAt: z.iso.datetime(),
    decidedAt: z.iso.datetime().optional(),
  })
  .meta({ id: 'Order' });
export type OrderView = z.infer<typeof OrderView>;

/** `Prefer: wait=N` (RFC 7240), capped at 30 s; anything else is ignored, as the RFC asks. */
export function preferredWaitSeconds(prefer: string | undefined): number {
  const match = prefer?.match(/(?:^|[\s,;])wait\s*=\s*"?(\d{1,6})"?/i);
  return match ? Math.min(Number(match[1]), 30) : 0;
}

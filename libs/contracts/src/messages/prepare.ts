import { z } from 'zod';
import { defineMessage } from '../envelope';
import { Currency, CustomerId, LIMITS, MinorUnits, OrderLine } from './common';

const deadline = z.iso.datetime({ offset: true });

/** What the inventory must reserve. */
export const InventoryPrepare = z.strictObject({
  participant: z.literal('inventory'),
  deadline,
  items: z
    .array(OrderLine)
    .min(1)
    .max(LIMITS.maxLinesPerOrder)
    .refine((items) => new Set(items.map((item) => item.sku)).size === items.length, 'each sku at most once'),
});

/** What the payment service must hold. */
export const PaymentPrepare = z.strictObject({
  participant: z.literal('payment'),
  deadline,
  customerId: CustomerId,
  amount: MinorUnits,
  currency: Currency,
});

/** order → participant: "can you promise your part before the deadline?" One member per participant. */
export const PreparePayload = z.discriminatedUnion('participant', [InventoryPrepare, PaymentPrepare]);
export type PreparePayload = z.infer<typeof PreparePayload>;

export const Prepare = defineMessage('prepare', 1, PreparePayload);

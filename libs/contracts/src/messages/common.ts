import { z } from 'zod';

/** Limits shared by the REST API and the messages, so both reject the same absurd input. */
export const LIMITS = {
  maxLinesPerOrder: 100,
  maxQuantityPerLine: 10_000,
  maxSkuLength: 64,
  maxCustomerIdLength: 64,
} as const;

export const Sku = z
  .string()
  .min(1)
  .max(LIMITS.maxSkuLength)
  .regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, ".", "_" or "-"');
export const CustomerId = z
  .string()
  .min(1)
  .max(LIMITS.maxCustomerIdLength)
  .regex(/^[A-Za-z0-9._@-]+$/, 'letters, digits, ".", "_", "@" or "-"');
/** Money is integer minor units (cents), never floats. */
export const MinorUnits = z.int().nonnegative().max(Number.MAX_SAFE_INTEGER);
export const Currency = z.string().regex(/^[A-Z]{3}$/, 'ISO 4217 code');
export const Quantity = z.int().positive().max(LIMITS.maxQuantityPerLine);

export const OrderLine = z.strictObject({ sku: Sku, quantity: Quantity });
export type OrderLine = z.infer<typeof OrderLine>;

export const Outcome = z.enum(['commit', 'abort']);
export type Outcome = z.infer<typeof Outcome>;

import { z } from 'zod';
import { Sku } from '@shop/contracts';

export const SkuParam = Sku;

/**
 * The highest unit price. With at most LIMITS.maxLinesPerOrder lines of LIMITS.maxQuantityPerLine
 * each, an order's total stays below 2^53 (exact in JSON, far inside the bigint columns):
 * no order can overflow (order.schemas.spec.ts checks the product).
 */
export const MAX_UNIT_PRICE = 1_000_000_000;

export const PutProductBody = z
  .strictObject({
    name: z.string().trim().min(1).max(200),
    /** Integer minor units (cents). */
    unitPrice: z.int().positive().max(MAX_UNIT_PRICE),
  })
  .meta({ id: 'PutProductBody' });
export type PutProductBody = z.infer<typeof PutProductBody>;

export const ProductView = z
  .object({ sku: Sku, name: z.string(), unitPrice: z.int(), updatedAt: z.iso.datetime() })
  .meta({ id: 'Product' });
export type ProductView = z.infer<typeof ProductView>;

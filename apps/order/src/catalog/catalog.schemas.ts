import { z } from 'zod';
import { Sku } from '@shop/contracts';

export const SkuParam = Sku;

export const PutProductBody = z
  .strictObject({
    name: z.string().trim().min(1).max(200),
    /** Integer minor units (cents). */
    unitPrice: z.int().positive().max(1_000_000_000),
  })
  .meta({ id: 'PutProductBody' });
export type PutProductBody = z.infer<typeof PutProductBody>;

export const ProductView = z
  .object({ sku: Sku, name: z.string(), unitPrice: z.int(), updatedAt: z.iso.datetime() })
  .meta({ id: 'Product' });
export type ProductView = z.infer<typeof ProductView>;

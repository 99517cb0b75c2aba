import { z } from 'zod';
import { Sku } from '@shop/contracts';

export const SkuParam = Sku;

export const PutStockBody = z
  .strictObject({ quantity: z.int().nonnegative().max(1_000_000_000) })
  .meta({ id: 'PutStockBody', description: 'Sets the available quantity' });
export type PutStockBody = z.infer<typeof PutStockBody>;

export const StockView = z
  .object({ sku: Sku, available: z.int(), reserved: z.int(), sold: z.int() })
  .meta({ id: 'Stock' });
export type StockView = z.infer<typeof StockView>;

import { z } from 'zod';
import { Sku } from '@shop/contracts';

export const SkuParam = Sku;

/**
 * The most units a SKU may have counted (`stocked` = available + reserved + sold, an `int` column):
 * a PUT that would count more is refused with 422, not an overflow.
 */
export const MAX_STOCKED = 2_147_483_647;

export const PutStockBody = z
  .strictObject({ quantity: z.int().nonnegative().max(1_000_000_000) })
  .meta({ id: 'PutStockBody', description: 'Sets the available quantity' });
export type PutStockBody = z.infer<typeof PutStockBody>;

export const StockView = z
  .object({ sku: Sku, available: z.int(), reserved: z.int(), sold: z.int() })
  .meta({ id: 'Stock' });
export type StockView = z.infer<typeof StockView>;

import { LIMITS, MinorUnits } from '@shop/contracts';
import { MAX_UNIT_PRICE, PutProductBody } from '../catalog/catalog.schemas';
import { PlaceOrderBody } from './order.schemas';

/** Order totals are bounded by the inputs, so pricing an order can never overflow into a 500. */
describe('order totals', () => {
  it('the largest order the schemas accept, at the highest price, totals an exact amount a payment accepts', () => {
    const items = Array.from({ length: LIMITS.maxLinesPerOrder }, (_, i) => ({
      sku: `s${i}`,
      quantity: LIMITS.maxQuantityPerLine,
    }));
    expect(PlaceOrderBody.safeParse({ customerId: 'c', items }).success).toBe(true);
    expect(PutProductBody.safeParse({ name: 'p', unitPrice: MAX_UNIT_PRICE }).success).toBe(true);
    const total = items.reduce((sum, item) => sum + item.quantity * MAX_UNIT_PRICE, 0);
    expect(Number.isSafeInteger(total)).toBe(true);
    expect(MinorUnits.safeParse(total).success).toBe(true);
  });

  it('refuses what would go past those bounds', () => {
    expect(PutProductBody.safeParse({ name: 'p', unitPrice: MAX_UNIT_PRICE + 1 }).success).toBe(false);
    const line = { sku: 's', quantity: LIMITS.maxQuantityPerLine + 1 };
    expect(PlaceOrderBody.safeParse({ customerId: 'c', items: [line] }).success).toBe(false);
  });
});

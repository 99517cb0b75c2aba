import type { ServiceData } from '@shop/service-kit';

/** The inventory's data for a shop: every product stocked with the units the orders may buy. */
export const data: ServiceData = (shop) =>
  shop.products.map(({ sku, units }) => ({
    method: 'PUT',
    path: `/stock/${encodeURIComponent(sku)}`,
    body: { quantity: units },
  }));

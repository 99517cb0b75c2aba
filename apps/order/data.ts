import type { ServiceData } from '@shop/service-kit';

/** The order service's data for a shop: its catalog (the prices orders are charged). */
export const data: ServiceData = (shop) =>
  shop.products.map(({ sku, name, unitPrice }) => ({
    method: 'PUT',
    path: `/products/${encodeURIComponent(sku)}`,
    body: { name, unitPrice },
  }));

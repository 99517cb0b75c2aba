import type { ServiceData } from '@shop/service-kit';

/** The payment service's data for a shop: every customer's account, with what they may spend. */
export const data: ServiceData = (shop) =>
  shop.customers.map(({ customerId, spend }) => ({
    method: 'PUT',
    path: `/accounts/${encodeURIComponent(customerId)}`,
    body: { balance: spend },
  }));

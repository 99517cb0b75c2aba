import { PARTICIPANTS, type Participant } from '@shop/contracts';
import type { PrepareRequests } from '@shop/two-phase-commit';
import type { OrderRequest } from './order.schemas';

/** An order as its participants are asked about it: the customer's request, priced. */
export interface PricedOrder {
  request: OrderRequest;
  /** Integer minor units. */
  total: number;
  currency: string;
}

/**
 * What each participant is asked to prepare for an order, one entry per participant of
 * services.json: TypeScript fails here for a participant that has none.
 */
export const PREPARE_REQUESTS: { [P in Participant]: (order: PricedOrder) => PrepareRequests[P] } = {
  payment: ({ request, total, currency }) => ({ customerId: request.customerId, amount: total, currency }),
  inventory: ({ request }) => ({ items: request.items }),
  // npm run new:participant adds the next entry above this line.
};

/** Every participant's prepare request for `order`. */
export function prepareRequests(order: PricedOrder): PrepareRequests {
  return Object.fromEntries(
    PARTICIPANTS.map((participant) => [participant, PREPARE_REQUESTS[participant](order)]),
  ) as PrepareRequests;
}

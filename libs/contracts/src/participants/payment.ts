import { z } from 'zod';
import { Currency, CustomerId, MinorUnits } from '../messages/common';

/** What the payment service must hold: an amount from the customer's account. */
export const prepareRequest = z.strictObject({
  customerId: CustomerId,
  amount: MinorUnits,
  currency: Currency,
});

/** Why the payment service may vote no (besides the protocol's own reasons). */
export const noVoteReasons = ['INSUFFICIENT_FUNDS', 'UNKNOWN_ACCOUNT'] as const;

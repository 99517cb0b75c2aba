import { z } from 'zod';
import { CustomerId } from '@shop/contracts';

export const CustomerIdParam = CustomerId;

/**
 * The most money an account may have counted (`deposited` = balance + held + captured), so every
 * figure stays exact as a JSON number: a PUT that would count more is refused with 422.
 */
export const MAX_DEPOSITED = Number.MAX_SAFE_INTEGER;

export const PutAccountBody = z
  .strictObject({ balance: z.int().nonnegative().max(Number.MAX_SAFE_INTEGER) })
  .meta({ id: 'PutAccountBody', description: 'Sets the balance (integer minor units)' });
export type PutAccountBody = z.infer<typeof PutAccountBody>;

export const AccountView = z
  .object({ customerId: CustomerId, balance: z.int(), held: z.int(), captured: z.int() })
  .meta({ id: 'Account' });
export type AccountView = z.infer<typeof AccountView>;

import { z } from 'zod';
import { mergeOrderFields } from './order-fields';

const contract = (orderFields?: z.ZodRawShape) => ({
  prepareRequest: z.strictObject({}),
  noVoteReasons: [],
  ...(orderFields ? { orderFields } : {}),
});

describe('the order fields participants declare', () => {
  it('are merged, in participant order; a participant without any adds none', () => {
    const slot = z.string().optional();
    const gift = z.boolean().optional();
    const merged = mergeOrderFields({
      payment: contract(),
      shipping: contract({ slot }),
      wrapping: contract({ gift }),
    });
    expect(merged).toEqual({ slot, gift });
  });

  it('refuse a field two participants declare, naming the second', () => {
    const slot = z.string().optional();
    expect(() => mergeOrderFields({ shipping: contract({ slot }), pickup: contract({ slot }) })).toThrow(
      "libs/contracts/src/participants/pickup.ts: order field 'slot' is declared already",
    );
  });

  it.each(['customerId', 'items'])("refuse the order body's own field %s", (name) => {
    expect(() => mergeOrderFields({ shipping: contract({ [name]: z.string() }) })).toThrow(
      `libs/contracts/src/participants/shipping.ts: order field '${name}' is declared already`,
    );
  });
});

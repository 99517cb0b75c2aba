import { createHash } from 'node:crypto';
import type { OrderRequest } from './order.schemas';
import { hashRequest } from './orders.service';

describe('hashRequest', () => {
  const sha256 = (value: unknown) => createHash('sha256').update(JSON.stringify(value)).digest('hex');

  it('sorts the lines by code point, not by locale ("B" before "a", "-" before "_")', () => {
    const items = [
      { sku: 'a', quantity: 1 },
      { sku: 'B', quantity: 2 },
      { sku: 'x_1', quantity: 3 },
      { sku: 'x-1', quantity: 4 },
    ];
    const expected = sha256([
      'c1',
      [
        ['B', 2],
        ['a', 1],
        ['x-1', 4],
        ['x_1', 3],
      ],
    ]);
    expect(hashRequest({ customerId: 'c1', items })).toBe(expected);
    expect(hashRequest({ customerId: 'c1', items: [...items].reverse() })).toBe(expected);
  });

  it('tells different requests apart', () => {
    const base = { customerId: 'c1', items: [{ sku: 'a', quantity: 1 }] };
    expect(hashRequest({ ...base, customerId: 'c2' })).not.toBe(hashRequest(base));
    expect(hashRequest({ ...base, items: [{ sku: 'a', quantity: 2 }] })).not.toBe(hashRequest(base));
  });

  it('counts every other field of the body, so a field added to the order body cannot change under a reused key', () => {
    const base = { customerId: 'c1', items: [{ sku: 'a', quantity: 1 }] };
    // What a new participant's field would look like (PlaceOrderBody has none yet).
    const withSlot = (slot: unknown) => ({ ...base, deliverySlot: slot }) as unknown as OrderRequest;
    expect(hashRequest(withSlot('2026-12-01'))).not.toBe(hashRequest(base));
    expect(hashRequest(withSlot('2026-12-01'))).not.toBe(hashRequest(withSlot('2026-12-02')));
    expect(hashRequest(withSlot({ day: '2026-12-01' }))).not.toBe(hashRequest(withSlot({ day: '2026-12-02' })));
    // An optional field left out is the body without it: the hashes already stored stay valid.
    expect(hashRequest(withSlot(undefined))).toBe(hashRequest(base));
    // Whatever the order the fields come in.
    const twoFields = (first: [string, string], second: [string, string]) =>
      ({ ...base, ...Object.fromEntries([first, second]) }) as unknown as OrderRequest;
    expect(hashRequest(twoFields(['x', '1'], ['y', '2']))).toBe(hashRequest(twoFields(['y', '2'], ['x', '1'])));
  });
});

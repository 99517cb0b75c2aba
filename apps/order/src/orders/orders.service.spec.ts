import { createHash } from 'node:crypto';
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
});

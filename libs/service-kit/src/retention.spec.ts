import { Logger } from '@nestjs/common';
import { Retention } from './retention';

describe('Retention', () => {
  it('runs every registered prune, one after another, and says how many records each removed', async () => {
    const retention = new Retention();
    const order: string[] = [];
    retention.register('inbox', () => (order.push('inbox'), Promise.resolve(3)));
    retention.register('idempotency keys', () => (order.push('keys'), Promise.resolve(0)));
    expect(await retention.prune()).toEqual({ inbox: 3, 'idempotency keys': 0 });
    expect(order).toEqual(['inbox', 'keys']);
  });

  it('logs a prune that fails and still runs the others', async () => {
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    try {
      const retention = new Retention();
      retention.register('inbox', () => Promise.reject(new Error('connection lost')));
      retention.register('idempotency keys', () => Promise.resolve(2));
      expect(await retention.prune()).toEqual({ inbox: 0, 'idempotency keys': 2 });
      expect(warn).toHaveBeenCalledWith(expect.stringMatching(/inbox prune failed: Error: connection lost/));
    } finally {
      warn.mockRestore();
    }
  });
});

import { isTransientDatabaseError } from './transient-errors';

describe('isTransientDatabaseError', () => {
  it.each([
    ['a deadlock', { code: '40P01' }],
    ['a server shutting down', { code: '57P01' }],
    ['a lock wait past lock_timeout', { code: '55P03' }],
    ['a statement past statement_timeout', { code: '57014' }],
    ['a session ended idle in transaction', { code: '25P03' }],
    ['a lost connection (class 08)', { code: '08006' }],
    [
      'a refused connection',
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:25432'), { code: 'ECONNREFUSED' }),
    ],
    ['a TypeORM-wrapped serialization failure', { message: 'could not serialize', driverError: { code: '40001' } }],
    ['a terminated connection', new Error('Connection terminated unexpectedly')],
    [
      'a statement on a transaction whose connection was lost',
      new Error('Query runner already released. Cannot run queries anymore.'),
    ],
  ])('treats %s as transient', (_case, err) => {
    expect(isTransientDatabaseError(err)).toBe(true);
  });

  it.each([
    ['a check violation', { code: '23514' }],
    ['a unique violation', { code: '23505' }],
    ['a plain bug', new TypeError("Cannot read properties of undefined (reading 'x')")],
    ['nothing', undefined],
  ])('treats %s as a real failure', (_case, err) => {
    expect(isTransientDatabaseError(err)).toBe(false);
  });
});

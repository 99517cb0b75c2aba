import request from 'supertest';
import type { BrokerConnection } from '@shop/messaging';
import { createTestSchema, TestSchema } from '../../../test/support/postgres';
import { ManagementDatabase } from './management-database';
import { ManagementServer } from './management-server';
import { ServiceMetrics } from './metrics';

/** A management port on `databaseUrl`, its first database reads done, on a free port. */
async function managementOn(databaseUrl: string, broker: Pick<BrokerConnection, 'isConnected' | 'address'>) {
  const database = new ManagementDatabase(databaseUrl, 'health');
  const server = new ManagementServer(new ServiceMetrics('order', database), database, broker as BrokerConnection);
  const url = `http://127.0.0.1:${await server.listen(0, '127.0.0.1')}`;
  await database.refresh();
  return { server, url };
}

/** /health/live and /health/ready on a real Postgres, with a broker connection we can take down. */
describe('health endpoints', () => {
  let schema: TestSchema;
  let management: Awaited<ReturnType<typeof managementOn>>;
  const server = () => management.url;
  const broker = { isConnected: true, address: '127.0.0.1:5672' };

  beforeAll(async () => {
    schema = await createTestSchema('health');
    management = await managementOn(schema.url, broker);
  });
  afterAll(async () => {
    await management?.server.onApplicationShutdown();
    await schema?.drop();
  });

  it('is live and ready while the database and the broker are reachable', async () => {
    await request(server()).get('/health/live').expect(200, { status: 'ok', info: {}, error: {}, details: {} });
    const ready = await request(server()).get('/health/ready').expect(200);
    expect(ready.body).toMatchObject({
      status: 'ok',
      info: { database: { status: 'up' }, broker: { status: 'up', address: '127.0.0.1:5672' } },
    });
    expect(ready.headers['cache-control']).toContain('no-store');
  });

  it('is not ready (503, with the details) while the broker is down, and live all the same', async () => {
    broker.isConnected = false;
    try {
      const ready = await request(server()).get('/health/ready').expect(503);
      expect(ready.body).toMatchObject({
        status: 'error',
        info: { database: { status: 'up' } },
        error: { broker: { status: 'down' } },
      });
      await request(server()).get('/health/live').expect(200);
    } finally {
      broker.isConnected = true;
    }
    await request(server()).get('/health/ready').expect(200);
  });

  it('is not ready while the database does not answer', async () => {
    // Nothing listens on port 1: the management connection's ping fails as against a stopped server.
    const unreachable = await managementOn('postgres://health:x@127.0.0.1:1/none', broker);
    try {
      const ready = await request(unreachable.url).get('/health/ready').expect(503);
      expect(ready.body).toMatchObject({ status: 'error', error: { database: { status: 'down' } } });
    } finally {
      await unreachable.server.onApplicationShutdown();
    }
  });
});

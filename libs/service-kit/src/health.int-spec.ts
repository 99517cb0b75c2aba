import { INestApplication, Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { TypeOrmModule } from '@nestjs/typeorm';
import type { Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { BrokerConnection } from '@shop/messaging';
import { createTestSchema, TestSchema } from '../../../test/support/postgres';
import { createServiceApp } from './bootstrap';
import { BaseConfig } from './config';
import { serviceDataSourceOptions } from './data-source';
import { BrokerHealthIndicator, ConsumerHealthIndicator, HealthController } from './health.controller';

/** /health/live and /health/ready on a real Postgres, with a broker connection we can take down. */
describe('health endpoints', () => {
  let schema: TestSchema;
  let app: INestApplication;
  const server = () => app.getHttpServer() as Server;
  const broker = { isConnected: true, address: '127.0.0.1:5672' };

  beforeAll(async () => {
    schema = await createTestSchema('health');
    @Module({
      imports: [
        TypeOrmModule.forRoot(serviceDataSourceOptions({ url: schema.url, migrations: [], applicationName: 'health' })),
        TerminusModule.forRoot({ logger: false }),
      ],
      controllers: [HealthController],
      providers: [BrokerHealthIndicator, ConsumerHealthIndicator, { provide: BrokerConnection, useValue: broker }],
    })
    class HealthTestModule {}
    const config = BaseConfig.parse({
      PORT: '3000',
      DATABASE_URL: schema.url,
      AMQP_URL: 'amqp://unused',
      LOG_LEVEL: 'silent',
    });
    app = await createServiceApp(HealthTestModule, { service: 'order', config });
    await app.init();
  });
  afterAll(async () => {
    await app?.close();
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
    const dataSource = app.get(DataSource);
    await dataSource.destroy();
    try {
      const ready = await request(server()).get('/health/ready').expect(503);
      expect(ready.body).toMatchObject({ status: 'error', error: { database: { status: 'down' } } });
    } finally {
      await dataSource.initialize();
    }
  });
});

import { INestApplication, Module } from '@nestjs/common';
import type { Server } from 'node:http';
import request from 'supertest';
import { createServiceApp, CustomerTokens, SERVICE_CONFIG } from '@shop/service-kit';
import { OrderConfig } from '../config';
import { developmentControllers } from './dev-tokens.controller';

/** The order service's controllers that depend on NODE_ENV, on a real HTTP app (no database or broker). */
async function appIn(
  NODE_ENV: 'development' | 'production' | undefined,
): Promise<{ app: INestApplication; tokens: CustomerTokens }> {
  const config = OrderConfig.parse({
    ...(NODE_ENV === undefined ? {} : { NODE_ENV }),
    PORT: '3000',
    DATABASE_URL: 'postgres://unused',
    AMQP_URL: 'amqp://unused',
    LOG_LEVEL: 'silent',
  });
  @Module({
    controllers: developmentControllers(config),
    providers: [{ provide: SERVICE_CONFIG, useValue: config }, CustomerTokens],
  })
  class DevModule {}
  const app = await createServiceApp(DevModule, { service: 'order', config });
  await app.init();
  return { app, tokens: app.get(CustomerTokens) };
}

describe('POST /dev/tokens', () => {
  it('gives a development token for the customer asked for, one the service accepts', async () => {
    const { app, tokens } = await appIn('development');
    try {
      const response = await request(app.getHttpServer() as Server)
        .post('/dev/tokens')
        .send({ customerId: 'alice' })
        .expect(200);
      expect(await tokens.verify((response.body as { token: string }).token)).toBe('alice');
      await request(app.getHttpServer() as Server)
        .post('/dev/tokens')
        .send({ customerId: 'not a customer id' })
        .expect(400);
    } finally {
      await app.close();
    }
  });

  it.each([
    ['NODE_ENV=production', 'production'],
    ['NODE_ENV unset (production unless development is asked for)', undefined],
  ] as const)('does not exist with %s: 404', async (_case, NODE_ENV) => {
    const { app } = await appIn(NODE_ENV);
    try {
      const response = await request(app.getHttpServer() as Server)
        .post('/dev/tokens')
        .send({ customerId: 'alice' })
        .expect(404);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    } finally {
      await app.close();
    }
  });
});

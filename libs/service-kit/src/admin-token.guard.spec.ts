import { Controller, INestApplication, Module, Put } from '@nestjs/common';
import type { Server } from 'node:http';
import request from 'supertest';
import { AdminOnly } from './admin-token.guard';
import { createServiceApp } from './bootstrap';
import { BaseConfig } from './config';
import { SERVICE_CONFIG } from './tokens';

const CURRENT = 'current-admin-token-0123';
const NEXT = 'next-admin-token-456789';

@Controller('admin-thing')
class AdminThingController {
  @Put()
  @AdminOnly()
  put() {
    return { done: true };
  }
}

/** The admin token guard on a real HTTP app (no database or broker needed). */
describe('admin routes', () => {
  let app: INestApplication;
  const server = () => app.getHttpServer() as Server;

  beforeAll(async () => {
    // Two tokens while one is rotated out (spaces around the comma are allowed).
    const config = BaseConfig.parse({
      PORT: '3000',
      DATABASE_URL: 'postgres://unused',
      AMQP_URL: 'amqp://unused',
      ADMIN_TOKEN: `${CURRENT}, ${NEXT}`,
      LOG_LEVEL: 'silent',
    });
    @Module({ controllers: [AdminThingController], providers: [{ provide: SERVICE_CONFIG, useValue: config }] })
    class AdminThingModule {}
    app = await createServiceApp(AdminThingModule, { service: 'order', config });
    await app.init();
  });
  afterAll(() => app.close());

  it.each([CURRENT, NEXT])('accept any token of the list (%s)', async (token) => {
    await request(server()).put('/admin-thing').set('authorization', `Bearer ${token}`).expect(200, { done: true });
  });

  it.each([
    ['no token', undefined],
    ['a wrong token', 'Bearer wrong-token-value-0000'],
    ['a token one character short', `Bearer ${CURRENT.slice(0, -1)}`],
    ['a token with a character more', `Bearer ${CURRENT}x`],
    ['the whole list as one token', `Bearer ${CURRENT},${NEXT}`],
    ['the token without the scheme', CURRENT],
    ['the token as Basic auth', `Basic ${Buffer.from(`admin:${CURRENT}`).toString('base64')}`],
  ])('refuse %s with 401 and a Bearer challenge', async (_case, authorization) => {
    const call = request(server()).put('/admin-thing');
    if (authorization) void call.set('authorization', authorization);
    const response = await call.expect(401);
    expect(response.headers['www-authenticate']).toBe('Bearer realm="admin"');
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
  });
});

describe('the ADMIN_TOKEN setting', () => {
  const required = { PORT: '3000', DATABASE_URL: 'postgres://u:p@h/db', AMQP_URL: 'amqp://u:p@h/v' };

  it('is a comma-separated list of tokens of at least 12 characters', () => {
    expect(BaseConfig.parse({ ...required, ADMIN_TOKEN: `${CURRENT},${NEXT}` }).ADMIN_TOKEN).toEqual([CURRENT, NEXT]);
    expect(BaseConfig.safeParse({ ...required, ADMIN_TOKEN: `${CURRENT},short` }).success).toBe(false);
    expect(BaseConfig.safeParse({ ...required, ADMIN_TOKEN: `${CURRENT},` }).success).toBe(false);
  });
});

import { Body, Controller, INestApplication, Logger, Module, Post } from '@nestjs/common';
import type { Server } from 'node:http';
import request from 'supertest';
import { z } from 'zod';
import { addLogContext } from '@shop/messaging';
import { createServiceApp } from './bootstrap';
import { BaseConfig } from './config';

const ThingBody = z.strictObject({ name: z.string() });

@Controller('things')
class ThingsController {
  @Post()
  create(@Body({ schema: ThingBody }) body: z.infer<typeof ThingBody>) {
    addLogContext({ transactionId: `tx-${body.name}` });
    new Logger('Things').log('creating');
    return { created: body.name };
  }
}

@Module({ controllers: [ThingsController] })
class ThingsModule {}

/** The HTTP side every service shares, on a module without database or broker. */
describe('service app (HTTP)', () => {
  let app: INestApplication;
  const server = () => app.getHttpServer() as Server;
  let lines: Array<Record<string, unknown>> = [];

  beforeAll(async () => {
    const config = BaseConfig.parse({
      PORT: '3000',
      DATABASE_URL: 'postgres://unused',
      AMQP_URL: 'amqp://unused',
      LOG_FORMAT: 'json',
      LOG_LEVEL: 'debug', // an answered request's line is at debug
    });
    jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      for (const line of chunk.toString().split('\n').filter(Boolean))
        lines.push(JSON.parse(line) as Record<string, unknown>);
      return true;
    });
    app = await createServiceApp(ThingsModule, { service: 'order', config });
    await app.init();
  });
  beforeEach(() => (lines = []));
  afterAll(async () => {
    await app.close();
    jest.restoreAllMocks();
  });

  it('logs the request as one JSON line carrying the transaction id a controller set, and no headers', async () => {
    await request(server())
      .post('/things')
      .set('authorization', 'Bearer secret-token')
      .send({ name: 'a' })
      .expect(201, { created: 'a' });
    const handler = lines.find((l) => l.msg === 'creating');
    expect(handler).toMatchObject({ service: 'order', level: 'info', context: 'Things', transactionId: 'tx-a' });
    expect(handler).toHaveProperty('reqId'); // written through the request's logger
    const requestLine = lines.find((l) => typeof l.msg === 'string' && l.msg.startsWith('POST /things 201'));
    expect(requestLine).toMatchObject({
      service: 'order',
      level: 'debug',
      transactionId: 'tx-a',
      req: { method: 'POST', url: '/things' },
      res: { statusCode: 201 },
    });
    expect(typeof requestLine?.responseTime).toBe('number');
    expect(JSON.stringify(lines)).not.toContain('secret-token');
  });

  it('sends security headers, and no x-powered-by', async () => {
    const response = await request(server()).post('/things').send({ name: 'b' }).expect(201);
    expect(response.headers).toMatchObject({
      'x-content-type-options': 'nosniff',
      'x-frame-options': 'SAMEORIGIN',
      'strict-transport-security': expect.stringContaining('max-age='),
      'content-security-policy': expect.stringContaining("default-src 'self'"),
    });
    expect(response.headers['content-security-policy']).not.toContain('upgrade-insecure-requests');
    expect(response.headers).not.toHaveProperty('x-powered-by');
  });

  it('keeps the body limit and validation, and logs the refusals', async () => {
    await request(server())
      .post('/things')
      .set('content-type', 'application/json')
      .send(JSON.stringify({ name: 'x'.repeat(200_000) }))
      .expect(413);
    await request(server()).post('/things').send({ name: 1 }).expect(400);
    await request(server())
      .post('/things')
      .set('content-type', 'application/json')
      .send('{"name":"a","__proto__":{}}')
      .expect(400);
    expect(lines.map((l) => l.msg)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^POST \/things 413 /),
        expect.stringMatching(/^POST \/things 400 /),
      ]),
    );
  });
});

import { Controller, Get, INestApplication, Module } from '@nestjs/common';
import type { Server } from 'node:http';
import request from 'supertest';
import { createServiceApp } from './bootstrap';
import { BaseConfig } from './config';
import { TooManyRequestsException } from './problem-details.filter';

/** What the database driver throws (TypeORM wraps the pg error as `driverError`). */
const databaseError = (code: string, message: string) =>
  Object.assign(new Error(message), { driverError: { code }, code });

@Controller('fails')
class FailingController {
  @Get('lock-timeout')
  lockTimeout() {
    throw databaseError('55P03', 'canceling statement due to lock timeout');
  }

  @Get('statement-timeout')
  statementTimeout() {
    throw databaseError('57014', 'canceling statement due to statement timeout');
  }

  @Get('out-of-range')
  outOfRange() {
    throw databaseError('22003', 'integer out of range');
  }

  @Get('too-many')
  tooMany() {
    throw new TooManyRequestsException('this customer places orders too fast', 7);
  }

  @Get('bug')
  bug() {
    throw new TypeError("Cannot read properties of undefined (reading 'x')");
  }
}

@Module({ controllers: [FailingController] })
class FailingModule {}

describe('problem details for database errors', () => {
  let app: INestApplication;
  const server = () => app.getHttpServer() as Server;

  beforeAll(async () => {
    const config = BaseConfig.parse({
      PORT: '3000',
      DATABASE_URL: 'postgres://unused',
      AMQP_URL: 'amqp://unused',
      LOG_LEVEL: 'silent',
    });
    app = await createServiceApp(FailingModule, { service: 'order', config });
    await app.init();
  });
  afterAll(() => app.close());

  it.each(['lock-timeout', 'statement-timeout'])('answers a %s with 503 and Retry-After, not 500', async (path) => {
    const response = await request(server()).get(`/fails/${path}`).expect(503);
    expect(response.headers['retry-after']).toBe('1');
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(response.body).toMatchObject({ status: 503, title: 'Service Unavailable' });
    expect(JSON.stringify(response.body)).not.toContain('timeout'); // no internals
  });

  it('answers a number out of range (a counter that would overflow) with 422, not 500', async () => {
    const response = await request(server()).get('/fails/out-of-range').expect(422);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(response.body).toMatchObject({ status: 422, title: 'Unprocessable Entity' });
    expect(JSON.stringify(response.body)).not.toContain('integer'); // no internals
  });

  it('answers a per-client limit with 429, its Retry-After and a problem body, not logged as an error', async () => {
    const response = await request(server()).get('/fails/too-many').expect(429);
    expect(response.headers['retry-after']).toBe('7');
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(response.body).toEqual({
      type: 'about:blank',
      title: 'Too Many Requests',
      status: 429,
      detail: 'this customer places orders too fast',
    });
  });

  it('still answers a bug with a plain 500', async () => {
    const response = await request(server()).get('/fails/bug').expect(500);
    expect(response.headers).not.toHaveProperty('retry-after');
  });
});

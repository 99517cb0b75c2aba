import { Controller, Get, INestApplication, Module } from '@nestjs/common';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { BrokerConnection } from '@shop/messaging';
import { createServiceApp } from './bootstrap';
import { BaseConfig, loadConfig } from './config';
import { managementPortOf } from './http.config';
import { ManagementDatabase } from './management-database';
import { ManagementServer } from './management-server';
import { ServiceMetrics } from './metrics';

@Controller()
class ThingsController {
  @Get('things')
  things() {
    return ['a thing'];
  }
}

@Module({ controllers: [ThingsController] })
class ThingsModule {}

const settings = (extra: Record<string, string>) =>
  BaseConfig.parse({
    NODE_ENV: 'development',
    PORT: '3000',
    DATABASE_URL: 'postgres://unused',
    AMQP_URL: 'amqp://unused',
    LOG_LEVEL: 'silent',
    ...extra,
  });

const statusOf = async (url: string, init?: RequestInit) => (await fetch(url, init)).status;

describe('the management port', () => {
  // Nothing listens on port 1: readiness says the database is down, the rest answers all the same.
  const database = new ManagementDatabase('postgres://x:y@127.0.0.1:1/none', 'management test');
  const broker = { isConnected: true, address: '127.0.0.1:5672' } as BrokerConnection;
  let management: ManagementServer;
  let url: string;
  beforeAll(async () => {
    management = new ManagementServer(new ServiceMetrics('order', database), database, broker);
    url = `http://127.0.0.1:${await management.listen(0, '127.0.0.1')}`;
  });
  afterAll(() => management.onApplicationShutdown());

  it('serves health and metrics, with query strings too, and nothing else', async () => {
    for (const path of ['/health/live', '/metrics', '/metrics?x=1', '/health/live?probe=1']) {
      expect([path, await statusOf(url + path)]).toEqual([path, 200]);
    }
    expect(await statusOf(`${url}/health/ready`)).toBe(503);
    for (const path of ['/things', '/docs', '/operator/dead-letters', '/metrics/x', '/METRICS']) {
      expect([path, await statusOf(url + path)]).toEqual([path, 404]);
    }
    expect(await statusOf(`${url}/metrics`, { method: 'POST' })).toBe(404);
    const metrics = await fetch(`${url}/metrics`);
    expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await metrics.text()).toMatch(/^process_cpu_seconds_total\{service="order"\}/m);
  });

  it('closes with the app', async () => {
    const own = new ManagementDatabase('postgres://x:y@127.0.0.1:1/none', 'management test');
    const other = new ManagementServer(new ServiceMetrics('order', own), own, broker);
    const otherUrl = `http://127.0.0.1:${await other.listen(0, '127.0.0.1')}`;
    expect(await statusOf(`${otherUrl}/health/live`)).toBe(200);
    await other.onApplicationShutdown();
    await expect(fetch(`${otherUrl}/health/live`)).rejects.toThrow();
  });

  it('serves the routes an app mounts (before listening) under their prefix only, any method', async () => {
    const own = new ManagementDatabase('postgres://x:y@127.0.0.1:1/none', 'management test');
    const other = new ManagementServer(new ServiceMetrics('order', own), own, broker);
    const seen: string[] = [];
    other.mount({
      prefix: '/console',
      handle: (request, response) => {
        seen.push(`${request.method} ${request.url}`);
        response.writeHead(200).end('mounted');
        return Promise.resolve();
      },
    });
    expect(() => other.mount({ prefix: '/console', handle: () => Promise.resolve() })).toThrow('mounted twice');
    const otherUrl = `http://127.0.0.1:${await other.listen(0, '127.0.0.1')}`;
    try {
      expect(await statusOf(`${otherUrl}/console`)).toBe(200);
      expect(await statusOf(`${otherUrl}/console/a/b?c=d`, { method: 'POST' })).toBe(200);
      expect(await statusOf(`${otherUrl}/consoles`)).toBe(404);
      expect(await statusOf(`${otherUrl}/health/live`)).toBe(200);
      expect(seen).toEqual(['GET /console', 'POST /console/a/b?c=d']);
      expect(() => other.mount({ prefix: '/late', handle: () => Promise.resolve() })).toThrow('before');
    } finally {
      await other.onApplicationShutdown();
    }
  });

  describe('the service app (the public port)', () => {
    let app: INestApplication | undefined;
    afterEach(async () => {
      await app?.close();
      app = undefined;
    });
    const started = async (extra: Record<string, string>) => {
      app = await createServiceApp(ThingsModule, { service: 'order', config: settings(extra) });
      await app.listen(0, '127.0.0.1');
      return `http://127.0.0.1:${((app.getHttpServer() as Server).address() as AddressInfo).port}`;
    };

    it('has /docs in development, and none in production unless ENABLE_DOCS=true', async () => {
      const development = await started({});
      for (const path of ['/things', '/docs', '/docs-json']) {
        expect([path, await statusOf(development + path)]).toEqual([path, 200]);
      }
      await app!.close();
      const production = await started({ NODE_ENV: 'production' });
      for (const path of ['/docs', '/docs-json']) {
        expect([path, await statusOf(production + path)]).toEqual([path, 404]);
      }
      await app!.close();
      const on = await started({ NODE_ENV: 'production', ENABLE_DOCS: 'true' });
      expect(await statusOf(`${on}/docs`)).toBe(200);
    });
  });

  it('is on by default: PORT + 6100 unless MANAGEMENT_PORT says otherwise', () => {
    expect(managementPortOf(settings({}))).toBe(9100);
    expect(managementPortOf(settings({ PORT: '13004' }))).toBe(19104);
    expect(managementPortOf(settings({ MANAGEMENT_PORT: '9200' }))).toBe(9200);
  });

  it('refuses a management port that is the main port, or a default past 65535', () => {
    const env = { PORT: '3000', MANAGEMENT_PORT: '3000', DATABASE_URL: 'postgres://x', AMQP_URL: 'amqp://x' };
    expect(() => loadConfig(BaseConfig, env)).toThrow(/MANAGEMENT_PORT: 3000 is PORT too/);
    expect(() => loadConfig(BaseConfig, { ...env, PORT: '60000', MANAGEMENT_PORT: '' })).toThrow(/past 65535; set it/);
  });
});

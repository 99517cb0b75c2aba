import { Controller, Get, INestApplication, Module } from '@nestjs/common';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createServiceApp, listenForManagement } from './bootstrap';
import { BaseConfig, loadConfig } from './config';

@Controller()
class RoutesController {
  @Get('health/ready')
  ready() {
    return { status: 'ok' };
  }

  @Get('metrics')
  metrics() {
    return 'checkout_up 1\n';
  }

  @Get('things')
  things() {
    return ['a thing'];
  }
}

@Module({ controllers: [RoutesController] })
class RoutesModule {}

const settings = (extra: Record<string, string>) =>
  BaseConfig.parse({
    NODE_ENV: 'development',
    PORT: '3000',
    DATABASE_URL: 'postgres://unused',
    AMQP_URL: 'amqp://unused',
    LOG_LEVEL: 'silent',
    ...extra,
  });

/** An app listening on free ports: its main port, and its management port if it has one. */
async function started(extra: Record<string, string>) {
  const config = settings(extra);
  const app = await createServiceApp(RoutesModule, { service: 'order', config });
  await app.listen(0, '127.0.0.1');
  const main = `http://127.0.0.1:${((app.getHttpServer() as Server).address() as AddressInfo).port}`;
  const management =
    config.MANAGEMENT_PORT === undefined
      ? undefined
      : `http://127.0.0.1:${await listenForManagement(app, 0, '127.0.0.1')}`;
  return { app, main, management };
}

const statusOf = async (url: string) => (await fetch(url)).status;
const MANAGEMENT_PATHS = ['/health/ready', '/metrics', '/docs', '/docs-json', '/METRICS', '/health/ready/'];

describe('the management port', () => {
  let app: INestApplication | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('without MANAGEMENT_PORT, the main port serves everything (as before)', async () => {
    const s = await started({});
    app = s.app;
    for (const path of ['/things', '/health/ready', '/metrics', '/docs', '/docs-json']) {
      expect([path, await statusOf(s.main + path)]).toEqual([path, 200]);
    }
  });

  it('with MANAGEMENT_PORT, health, metrics and docs are only on it, and the rest only on the main port', async () => {
    const s = await started({ MANAGEMENT_PORT: '9100' });
    app = s.app;
    for (const path of MANAGEMENT_PATHS) {
      expect([path, await statusOf(s.main + path)]).toEqual([path, 404]);
      expect([path, await statusOf(s.management! + path)]).toEqual([path, 200]);
    }
    const refused = await fetch(`${s.main}/metrics`);
    expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await refused.json()).toMatchObject({ status: 404, title: 'Not Found' });
    expect(await statusOf(`${s.main}/things`)).toBe(200);
    expect(await statusOf(`${s.management!}/things`)).toBe(404);
  });

  it('closes the management port with the app', async () => {
    const s = await started({ MANAGEMENT_PORT: '9100' });
    await s.app.close();
    await expect(fetch(`${s.management!}/health/ready`)).rejects.toThrow();
  });

  it('has no /docs in production unless ENABLE_DOCS=true', async () => {
    const off = await started({ NODE_ENV: 'production', MANAGEMENT_PORT: '9100' });
    app = off.app;
    for (const path of ['/docs', '/docs-json']) {
      expect([path, await statusOf(off.management! + path), await statusOf(off.main + path)]).toEqual([path, 404, 404]);
    }
    expect(await statusOf(`${off.management!}/health/ready`)).toBe(200);
    await app.close();
    const on = await started({ NODE_ENV: 'production', ENABLE_DOCS: 'true' });
    app = on.app;
    expect(await statusOf(`${on.main}/docs`)).toBe(200);
  });

  it('refuses a management port that is the main port', () => {
    const env = { PORT: '3000', MANAGEMENT_PORT: '3000', DATABASE_URL: 'postgres://x', AMQP_URL: 'amqp://x' };
    expect(() => loadConfig(BaseConfig, env)).toThrow(/MANAGEMENT_PORT: 3000 is PORT too/);
  });
});

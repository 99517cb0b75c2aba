import { Injectable, OnApplicationShutdown, Optional } from '@nestjs/common';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CheckoutMessaging } from '@shop/checkout-transport';
import { BrokerConnection } from '@shop/messaging';
import { liveness, readiness, type HealthReport } from './health';
import { ManagementDatabase } from './management-database';
import { ServiceMetrics } from './metrics';

/** The pathname of a request target in any form (origin-form `/metrics?x`, absolute-form `http://h/metrics`). */
const pathOf = (target: string | undefined): string | undefined => {
  try {
    return new URL(target ?? '', 'http://management.invalid').pathname;
  } catch {
    return undefined;
  }
};

/**
 * Requests under `prefix` (`/console`: that path and everything below it), any method, handed to
 * `handle` as they come: an app's own pages on the management port (the order service's console).
 */
export interface ManagementRoutes {
  prefix: string;
  handle(request: IncomingMessage, response: ServerResponse): Promise<void>;
}

/**
 * The management port: health probes (/health/live, /health/ready) and Prometheus metrics
 * (/metrics), on a listener of their own. The service's app does not have these routes at all,
 * so no request form reaches them on its port. Unauthenticated: keep this port on an internal
 * network (probes, Prometheus), off the ingress. Its answers read memory only: readiness's
 * database state and the database gauges come from `ManagementDatabase`'s timer. An app may
 * mount routes of its own (`mount`, before `listen`): they guard themselves.
 */
@Injectable()
export class ManagementServer implements OnApplicationShutdown {
  private readonly server: Server;
  private readonly mounted: ManagementRoutes[] = [];

  constructor(
    private readonly metrics: ServiceMetrics,
    private readonly database: ManagementDatabase,
    private readonly broker: BrokerConnection,
    @Optional() private readonly messaging?: CheckoutMessaging,
  ) {
    this.server = createServer((request, response) => void this.handle(request, response));
  }

  /** Serves `routes` on this port too; called while the app is assembled, before `listen`. */
  mount(routes: ManagementRoutes): void {
    if (this.server.listening) throw new Error(`${routes.prefix}: mount before the management port listens`);
    if (this.mounted.some((other) => other.prefix === routes.prefix))
      throw new Error(`${routes.prefix}: mounted twice`);
    this.mounted.push(routes);
  }

  /** Listens on `port` (0: any free one) and starts the database reads; answers the port. */
  async listen(port: number, host = '0.0.0.0'): Promise<number> {
    this.database.start();
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => resolve());
    });
    return (this.server.address() as AddressInfo).port;
  }

  /** Last of all (after the service's port closed and messaging drained): probes see it stop. */
  async onApplicationShutdown(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => (this.server.listening ? this.server.close(() => resolve()) : resolve()));
    await this.database.stop();
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const anyPath = pathOf(request.url);
    const routes = this.mounted.find(({ prefix }) => anyPath === prefix || anyPath?.startsWith(`${prefix}/`));
    const path = request.method === 'GET' ? anyPath : undefined;
    try {
      if (routes) return await routes.handle(request, response);
      if (path === '/health/live') return health(response, liveness());
      if (path === '/health/ready') {
        const { database, broker, messaging } = this;
        return health(response, readiness({ database: database.state, broker, messaging }));
      }
      if (path === '/metrics') {
        const text = await this.metrics.registry.metrics();
        response.writeHead(200, { 'content-type': this.metrics.registry.contentType, 'cache-control': 'no-store' });
        response.end(text);
        return;
      }
      problem(response, 404, 'Not Found', `Cannot ${request.method} ${path ?? request.url}`);
    } catch {
      if (response.headersSent) return void response.destroy();
      problem(response, 500, 'Internal Server Error', 'the management port could not answer');
    }
  }
}

function health(response: ServerResponse, report: HealthReport): void {
  response.writeHead(report.status === 'ok' ? 200 : 503, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-cache, no-store, must-revalidate',
  });
  response.end(JSON.stringify(report));
}

function problem(response: ServerResponse, status: number, title: string, detail: string): void {
  response.writeHead(status, { 'content-type': 'application/problem+json; charset=utf-8' });
  response.end(JSON.stringify({ type: 'about:blank', title, status, detail }));
}

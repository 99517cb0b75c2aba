import { INestApplication, Logger, Module, StandardSchemaValidationPipe, Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import type { NextFunction, Request, Response } from 'express';
import helmet from 'helmet';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Logger as PinoNestLogger } from 'nestjs-pino';
import { CheckoutMessaging, connectCheckoutTransport } from '@shop/checkout-transport';
import type { BaseConfig } from './config';
import { docsEnabled } from './http.config';
import { createServiceLogger, requestLogging, serviceLoggerModule } from './logging';
import { ProblemDetailsFilter } from './problem-details.filter';
import { startTracing } from './tracing';

export interface BootstrapOptions {
  /** Shown in logs, traces, metrics and in the OpenAPI title. */
  service: string;
  /** The service's validated config (port, log level and format, tracing endpoint, ...). */
  config: BaseConfig;
  description?: string;
}

function refusePrototypeKeys(key: string, value: unknown): unknown {
  if (key === '__proto__' || key === 'constructor' || key === 'prototype') {
    throw new SyntaxError(`the key "${key}" is not allowed`);
  }
  return value;
}

/**
 * The management routes: health probes, Prometheus metrics, the OpenAPI document and its UI.
 * Matched as Express routes them (case-insensitively, a trailing slash allowed).
 */
const MANAGEMENT_ROUTE = /^\/+(?:health|metrics|docs)(?:[/-]|$)/i;
export const isManagementPath = (path: string): boolean => MANAGEMENT_ROUTE.test(path);

/** Requests that came in on a management port (see `listenForManagement`). */
const managementRequests = new WeakSet<IncomingMessage>();

/**
 * With a management port, each port serves only its own routes: the main port answers 404 for
 * the management routes, the management port for everything else.
 */
function separateManagementRoutes(request: Request, response: Response, next: NextFunction): void {
  const path = request.url.split('?')[0];
  if (isManagementPath(path) === managementRequests.has(request)) return next();
  response
    .status(404)
    .type('application/problem+json')
    .json({ type: 'about:blank', title: 'Not Found', status: 404, detail: `Cannot ${request.method} ${path}` });
}

/** The root of every service's app: its logging (nestjs-pino), then the service's own module. */
@Module({})
class ServiceAppModule {}

/** Creates a service's Nest app configured like every other (without listening): used by main and tests. */
export async function createServiceApp(module: Type<unknown>, options: BootstrapOptions): Promise<INestApplication> {
  startTracing(options.service, options.config);
  const logger = createServiceLogger(options.service, options.config);
  const root = { module: ServiceAppModule, imports: [serviceLoggerModule(logger), module] };
  const app = await NestFactory.create<NestExpressApplication>(root, {
    bodyParser: false,
    // Held until the logger below is in place, then written through it.
    bufferLogs: true,
    // On shutdown, after messaging has drained, close keep-alive connections instead of waiting
    // for them to fall idle: clients that keep sending (retrying 503s, say) never let them, and
    // the process would miss its stop timeout. A request cut here is retried with its
    // Idempotency-Key, and its handler still finishes before the database closes.
    forceCloseConnections: true,
  });
  app.useLogger(app.get(PinoNestLogger));
  // Security headers; the CSP keeps everything but upgrade-insecure-requests, which would break
  // /docs when served over plain HTTP inside a network.
  app.use(helmet({ contentSecurityPolicy: { directives: { upgradeInsecureRequests: null } } }));
  app.use(...requestLogging(logger));
  if (options.config.MANAGEMENT_PORT !== undefined) app.use(separateManagementRoutes);
  // Small JSON bodies only; anything else is refused before it reaches a handler. Keys that
  // could reach an object's prototype are refused outright (validation would silently drop them).
  app.useBodyParser('json', { limit: '100kb', strict: true, reviver: refusePrototypeKeys });
  app.disable('x-powered-by');
  // Zod schemas on @Body/@Param/@Query are both the validation and the OpenAPI source.
  app.useGlobalPipes(new StandardSchemaValidationPipe());
  app.useGlobalFilters(new ProblemDetailsFilter());
  app.enableShutdownHooks();
  if (docsEnabled(options.config)) {
    const document = SwaggerModule.createDocument(
      app,
      new DocumentBuilder()
        .setTitle(`${options.service} service`)
        .setDescription(options.description ?? '')
        .setVersion('1')
        .build(),
    );
    SwaggerModule.setup('docs', app, document);
  }
  return app;
}

/**
 * Serves the app's management routes (health, metrics, docs) on `port` as well, and only those
 * (the app must have been created with MANAGEMENT_PORT set). It closes with the app's server.
 * Answers the port it listens on.
 */
export async function listenForManagement(app: INestApplication, port: number, host = '0.0.0.0'): Promise<number> {
  const handle = app.getHttpAdapter().getInstance() as (request: IncomingMessage, response: unknown) => void;
  const server: Server = createServer((request, response) => {
    managementRequests.add(request);
    handle(request, response);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  (app.getHttpServer() as Server).once('close', () => {
    server.closeAllConnections();
    server.close();
  });
  return (server.address() as AddressInfo).port;
}

/**
 * Starts one service the same way as every other: tracing, JSON logs, security headers, strict
 * JSON bodies, schema validation, problem-style errors, OpenAPI at /docs (unless off), shutdown
 * hooks (SIGTERM drains messaging before the database closes), its checkout messages to its
 * `@EventPattern` handlers (once the app is initialized: its topology declared, its outbox
 * relayed), listening on its port, and on its management port if it has one.
 */
export async function bootstrapService(module: Type<unknown>, options: BootstrapOptions): Promise<INestApplication> {
  const app = await createServiceApp(module, options);
  connectCheckoutTransport(app, app.get(CheckoutMessaging).transport);
  await app.init();
  await app.startAllMicroservices();
  await app.listen(options.config.PORT, '0.0.0.0');
  const { MANAGEMENT_PORT } = options.config;
  if (MANAGEMENT_PORT !== undefined) await listenForManagement(app, MANAGEMENT_PORT);
  new Logger('Bootstrap').log(
    `${options.service} listening on port ${options.config.PORT}` +
      (MANAGEMENT_PORT === undefined ? '' : `, health, metrics and docs on port ${MANAGEMENT_PORT}`),
  );
  return app;
}

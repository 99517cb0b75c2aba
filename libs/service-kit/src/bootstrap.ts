import { INestApplication, Logger, Module, StandardSchemaValidationPipe, Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import helmet from 'helmet';
import { Logger as PinoNestLogger } from 'nestjs-pino';
import { CheckoutMessaging, connectCheckoutTransport } from '@shop/checkout-transport';
import type { BaseConfig } from './config';
import { docsEnabled, managementPortOf } from './http.config';
import { createServiceLogger, requestLogging, serviceLoggerModule } from './logging';
import { ManagementServer } from './management-server';
import { ProblemDetailsFilter } from './problem-details.filter';
import { continueRequestTrace, isExported, startTracing } from './tracing';

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
  // First, so everything after it (the request log included) runs in the request's trace.
  if (!isExported(options.config)) app.use(continueRequestTrace);
  // Security headers; the CSP keeps everything but upgrade-insecure-requests, which would break
  // /docs when served over plain HTTP inside a network.
  app.use(helmet({ contentSecurityPolicy: { directives: { upgradeInsecureRequests: null } } }));
  app.use(...requestLogging(logger));
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
 * Starts one service the same way as every other: tracing, JSON logs, security headers, strict
 * JSON bodies, schema validation, problem-style errors, OpenAPI at /docs (unless off), shutdown
 * hooks (SIGTERM drains messaging before the database closes), its checkout messages to its
 * `@EventPattern` handlers (once the app is initialized: its topology declared, its outbox
 * relayed), listening on its port, and health and metrics on its management port (only there).
 */
export async function bootstrapService(module: Type<unknown>, options: BootstrapOptions): Promise<INestApplication> {
  const app = await createServiceApp(module, options);
  connectCheckoutTransport(app, app.get(CheckoutMessaging).transport);
  await app.init();
  await app.startAllMicroservices();
  await app.listen(options.config.PORT, '0.0.0.0');
  const managementPort = await app.get(ManagementServer).listen(managementPortOf(options.config));
  new Logger('Bootstrap').log(
    `${options.service} listening on port ${options.config.PORT}, health and metrics on port ${managementPort}`,
  );
  return app;
}

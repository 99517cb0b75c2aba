import type { DynamicModule } from '@nestjs/common';
import { context, isSpanContextValid, trace } from '@opentelemetry/api';
import type { RequestHandler } from 'express';
import { LoggerModule } from 'nestjs-pino';
import pino from 'pino';
import { pinoHttp } from 'pino-http';
import { currentLogContext, withLogContext } from '@shop/messaging';
import type { BaseConfig } from './config';

/**
 * The service's one logger: a JSON object per line on stdout with the time, level and service,
 * plus, on every line, the current log context (the checkout's `transactionId`, the message
 * being handled) and the active trace and span ids. Readable lines instead when LOG_FORMAT is
 * `pretty`, or when it is unset and stdout is a terminal.
 */
export function createServiceLogger(
  service: string,
  config: Pick<BaseConfig, 'LOG_LEVEL' | 'LOG_FORMAT'>,
  destination: NodeJS.WritableStream = process.stdout,
): pino.Logger {
  const format = config.LOG_FORMAT ?? ((destination as { isTTY?: boolean }).isTTY ? 'pretty' : 'json');
  return pino(
    {
      level: config.LOG_LEVEL,
      base: { service, pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      mixin: () => ({ ...currentLogContext(), ...traceIds() }),
      // `logger.error(err)` (an Error and no message): the error's message is the line's.
      hooks: {
        logMethod(args, method) {
          const [first] = args as unknown[];
          if (args.length === 1 && typeof first === 'object' && first !== null) {
            const err = (first as { err?: unknown }).err;
            if (err instanceof Error) return method.call(this, first, err.message);
          }
          return method.apply(this, args);
        },
      },
    },
    format === 'pretty' ? prettyLines(destination) : destination,
  );
}

function traceIds(): { traceId?: string; spanId?: string } {
  const span = trace.getSpan(context.active())?.spanContext();
  return span && isSpanContextValid(span) ? { traceId: span.traceId, spanId: span.spanId } : {};
}

/** `12:00:00.123 INFO  [Context] message  key=value …`, and a stack on the lines below. */
function prettyLines(out: NodeJS.WritableStream): pino.DestinationStream {
  return {
    write(line: string) {
      const entry = JSON.parse(line) as PrettyEntry;
      const { time, level, msg = '', context: name, service, stack, err, ...rest } = entry;
      // The request line's message already says what `req`, `res` and `responseTime` hold.
      for (const key of ['pid', 'req', 'res', 'responseTime']) delete rest[key];
      const fields = Object.entries(rest)
        .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`)
        .join(' ');
      const trace = err?.stack ?? stack;
      out.write(
        `${time.slice(11, 23)} ${level.toUpperCase().padEnd(5)} [${name ?? service}] ${msg}` +
          `${fields ? `  ${fields}` : ''}${trace ? `\n${trace}` : ''}\n`,
      );
    },
  };
}

interface PrettyEntry {
  time: string;
  level: string;
  service: string;
  msg?: string;
  context?: string;
  stack?: string;
  err?: { stack?: string };
  [field: string]: unknown;
}

/**
 * The HTTP request log, one line per response (`POST /orders 202`: at debug, a 4xx at warn, a 5xx at
 * error), and a log context per request that a controller fills in (the order's `transactionId`).
 * (Health and metrics are served by the management listener, not through this log.)
 */
export function requestLogging(logger: pino.Logger): RequestHandler[] {
  return [
    (_req, _res, next) => withLogContext({}, next),
    pinoHttp({
      logger,
      // Lines logged while handling the request carry its `reqId` (the request line has the rest).
      quietReqLogger: true,
      serializers: {
        req: (req: { id: unknown; method: string; url: string }) => ({ id: req.id, method: req.method, url: req.url }),
        res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
      },
      // An answered request is in the metrics, and its order's decision is logged at info; a line
      // each would add to the load (and so would a shed one's, a 503 under load). Failures are not.
      customLogLevel: (_req, res, err) =>
        res.statusCode === 503 || (!err && res.statusCode < 400)
          ? 'debug'
          : err || res.statusCode >= 500
            ? 'error'
            : 'warn',
      customSuccessMessage: (req, res, ms) => `${req.method} ${req.url} ${res.statusCode} ${ms} ms`,
      customErrorMessage: (req, res) => `${req.method} ${req.url} ${res.statusCode}`,
      // pino-http makes up an Error for a 5xx ("failed with status code 500", its own stack): the
      // handler's error is logged with its stack already (ProblemDetailsFilter).
      customErrorObject: (_req, _res, _err, value: Record<string, unknown>) => ({ ...value, err: undefined }),
    }),
  ];
}

/**
 * nestjs-pino as Nest's logger: the framework's lines and every `new Logger(context)` (or an
 * injected `PinoLogger`) go to the service's pino logger, with the `context` field; inside a
 * request, through that request's logger (`reqId`). The request log itself is not nestjs-pino's
 * module middleware (`useExisting`): Express runs module middleware after everything mounted with
 * `app.use`, so the body parser's refusals (413, 400) would go unlogged. The bootstrap mounts
 * `requestLogging` first instead, and nestjs-pino binds the `req.log` it leaves.
 *
 * nestjs-pino keeps one root logger per process (for lines outside a request), built for the
 * first app created in it; one service per process, as everywhere but in tests.
 */
export function serviceLoggerModule(logger: pino.Logger): DynamicModule {
  return LoggerModule.forRoot({ pinoHttp: { logger }, useExisting: true });
}

import type { LoggerService } from '@nestjs/common';
import { context, isSpanContextValid, trace } from '@opentelemetry/api';
import type { RequestHandler } from 'express';
import pino from 'pino';
import { pinoHttp } from 'pino-http';
import { currentLogContext, withLogContext } from '@shop/messaging';
import type { BaseConfig } from './config';

type Level = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';

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
      delete rest.pid;
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
 * Nest's LoggerService on the pino logger, so the framework's lines and every `new Logger(ctx)`
 * in the services and libraries come out the same way. Nest passes the context as the last
 * argument, and error() a stack before it.
 */
export class PinoNestLogger implements LoggerService {
  constructor(private readonly logger: pino.Logger) {}

  log(message: unknown, ...params: unknown[]) {
    this.write('info', message, params);
  }
  error(message: unknown, ...params: unknown[]) {
    this.write('error', message, params);
  }
  warn(message: unknown, ...params: unknown[]) {
    this.write('warn', message, params);
  }
  debug(message: unknown, ...params: unknown[]) {
    this.write('debug', message, params);
  }
  verbose(message: unknown, ...params: unknown[]) {
    this.write('trace', message, params);
  }
  fatal(message: unknown, ...params: unknown[]) {
    this.write('fatal', message, params);
  }

  private write(level: Level, message: unknown, params: unknown[]): void {
    const rest = [...params];
    const last = rest.at(-1);
    const context = typeof last === 'string' && !isStack(last) ? (rest.pop() as string) : undefined;
    if (level === 'error' || level === 'fatal') {
      if (rest.length > 0 && (rest[0] === undefined || typeof rest[0] === 'string')) {
        const stack = rest.shift() as string | undefined;
        if (stack) rest.unshift({ stack });
      }
    }
    const fields: Record<string, unknown> = { ...(context ? { context } : {}) };
    for (const extra of rest) if (typeof extra === 'object' && extra !== null) Object.assign(fields, extra);
    if (message instanceof Error) this.logger[level]({ ...fields, err: message }, message.message);
    else if (typeof message === 'object' && message !== null) this.logger[level]({ ...fields, ...message });
    else this.logger[level](fields, String(message));
  }
}

function isStack(text: string): boolean {
  return /\n\s+at /.test(text);
}

/**
 * The HTTP request log, one line per response (`POST /orders 202`: at debug, a 4xx at warn, a 5xx at
 * error), and a log context per request that a controller fills in (the order's `transactionId`).
 * Health and metrics polls are not logged.
 */
export function requestLogging(logger: pino.Logger): RequestHandler[] {
  return [
    (_req, _res, next) => withLogContext({}, next),
    pinoHttp({
      logger,
      serializers: {
        req: (req: { id: unknown; method: string; url: string }) => ({ id: req.id, method: req.method, url: req.url }),
        res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
      },
      autoLogging: { ignore: (req) => /^\/(health|metrics)(\/|\?|$)/.test(req.url ?? '') },
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
    }),
  ];
}

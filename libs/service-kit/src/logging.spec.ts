import { Writable } from 'node:stream';
import { INestApplicationContext, Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { addLogContext, withLogContext } from '@shop/messaging';
import { Logger as PinoNestLogger } from 'nestjs-pino';
import { createServiceLogger, serviceLoggerModule } from './logging';
import { startTracing } from './tracing';

/** A destination that keeps what the logger wrote, one entry per line. */
function captured(isTTY = false) {
  const lines: string[] = [];
  const stream = Object.assign(
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
        done();
      },
    }),
    { isTTY },
  );
  return { stream, lines, json: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>) };
}

describe('service logger', () => {
  beforeAll(() => {
    // What instrument() registers (without patching modules), and the provider with no exporter.
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    startTracing('order', {});
  });

  it('writes one JSON object per line with the service, level and time', () => {
    const out = captured();
    createServiceLogger('order', { LOG_LEVEL: 'info' }, out.stream).info('hello');
    expect(out.lines).toHaveLength(1);
    const [line] = out.json();
    expect(line).toMatchObject({ service: 'order', level: 'info', msg: 'hello' });
    expect(new Date(line.time as string).toISOString()).toBe(line.time);
  });

  it("puts the log context (the checkout's transaction id) on every line written inside it, and only there", async () => {
    const out = captured();
    const logger = createServiceLogger('payment', { LOG_LEVEL: 'info' }, out.stream);
    const handle = (transactionId: string) =>
      withLogContext({ messageId: `m-${transactionId}`, messageType: 'prepare' }, async () => {
        await new Promise((resolve) => setTimeout(resolve, 5));
        addLogContext({ transactionId }); // known once the message is decoded
        await new Promise((resolve) => setTimeout(resolve, 5));
        logger.info('handled');
      });
    await Promise.all([handle('t1'), handle('t2')]); // interleaved, each keeps its own
    logger.info('outside');
    const lines = out.json();
    expect(lines.filter((l) => l.msg === 'handled').map((l) => [l.transactionId, l.messageId, l.messageType])).toEqual(
      expect.arrayContaining([
        ['t1', 'm-t1', 'prepare'],
        ['t2', 'm-t2', 'prepare'],
      ]),
    );
    expect(lines.find((l) => l.msg === 'outside')).not.toHaveProperty('transactionId');
  });

  it('carries the active trace and span ids, even with no exporter configured', () => {
    const out = captured();
    const logger = createServiceLogger('order', { LOG_LEVEL: 'info' }, out.stream);
    const span = trace.getTracer('test').startSpan('work');
    context.with(trace.setSpan(context.active(), span), () => logger.info('traced'));
    span.end();
    const { traceId, spanId } = span.spanContext();
    expect(traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(traceId).not.toBe('0'.repeat(32));
    expect(out.json()[0]).toMatchObject({ traceId, spanId });
  });

  it('honours LOG_LEVEL', () => {
    const out = captured();
    const logger = createServiceLogger('order', { LOG_LEVEL: 'warn' }, out.stream);
    logger.info('dropped');
    logger.warn('kept');
    expect(out.json().map((l) => l.msg)).toEqual(['kept']);
  });

  it('writes readable lines on a terminal, or with LOG_FORMAT=pretty, and JSON when told so', () => {
    const tty = captured(true);
    createServiceLogger('order', { LOG_LEVEL: 'info' }, tty.stream).info({ context: 'Orders', sku: 'A' }, 'placed');
    expect(tty.lines[0]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO {2}\[Orders\] placed {2}sku=A$/);
    const pretty = captured();
    createServiceLogger('order', { LOG_LEVEL: 'info', LOG_FORMAT: 'pretty' }, pretty.stream).info('x');
    expect(pretty.lines[0]).toMatch(/ INFO {2}\[order\] x$/);
    const request = { req: { id: 1, method: 'GET', url: '/' }, res: { statusCode: 200 }, responseTime: 3, reqId: 1 };
    createServiceLogger('order', { LOG_LEVEL: 'info', LOG_FORMAT: 'pretty' }, pretty.stream).info(
      request,
      'GET / 200 3 ms',
    );
    expect(pretty.lines[1]).toMatch(/ INFO {2}\[order\] GET \/ 200 3 ms {2}reqId=1$/);
    const json = captured(true);
    createServiceLogger('order', { LOG_LEVEL: 'info', LOG_FORMAT: 'json' }, json.stream).info('x');
    expect(JSON.parse(json.lines[0])).toMatchObject({ msg: 'x' });
  });

  describe("as Nest's logger (nestjs-pino)", () => {
    // nestjs-pino keeps one root logger per process: one app, one destination for the file.
    const out = captured();
    let app: INestApplicationContext;
    beforeAll(async () => {
      const logger = createServiceLogger('order', { LOG_LEVEL: 'trace' }, out.stream);
      app = await NestFactory.createApplicationContext(
        { module: class LoggingRoot {}, imports: [serviceLoggerModule(logger)] },
        { bufferLogs: true },
      );
      app.useLogger(app.get(PinoNestLogger));
    });
    beforeEach(() => out.lines.splice(0));
    afterAll(async () => {
      await app.close();
      Logger.overrideLogger(false);
    });

    it('maps levels and takes the context from new Logger(context)', () => {
      const logger = new Logger('CheckoutMessaging');
      logger.log('consuming');
      logger.warn('slow');
      logger.debug('detail');
      logger.verbose('more detail');
      expect(out.json().map((l) => [l.level, l.context, l.msg, l.service])).toEqual([
        ['info', 'CheckoutMessaging', 'consuming', 'order'],
        ['warn', 'CheckoutMessaging', 'slow', 'order'],
        ['debug', 'CheckoutMessaging', 'detail', 'order'],
        ['trace', 'CheckoutMessaging', 'more detail', 'order'],
      ]);
    });

    it('logs an Error with its message, type and stack, alone or with a message of its own', () => {
      const err = new Error('failed');
      new Logger('X').error(err);
      new Logger('X').error({ err }, 'while charging');
      new Logger('X').error('no error here');
      const [alone, withMessage, plain] = out.json();
      expect(alone).toMatchObject({ level: 'error', context: 'X', msg: 'failed' });
      expect(alone.err).toMatchObject({ type: 'Error', message: 'failed', stack: err.stack });
      expect(withMessage).toMatchObject({ context: 'X', msg: 'while charging', err: { stack: err.stack } });
      expect(plain).toMatchObject({ level: 'error', context: 'X', msg: 'no error here' });
      expect(plain).not.toHaveProperty('err');
    });

    it("keeps the stack Nest's own exception handlers pass beside the message", () => {
      const err = new Error('boom');
      new Logger('ExceptionsHandler').error(err.message, err.stack);
      expect(out.json()[0]).toMatchObject({ context: 'ExceptionsHandler', err: { message: 'boom', stack: err.stack } });
    });

    it('carries the log context and trace ids on the lines it writes', () => {
      const span = trace.getTracer('test').startSpan('work');
      context.with(trace.setSpan(context.active(), span), () =>
        withLogContext({ transactionId: 't9' }, () => new Logger('Orders').log('placed')),
      );
      span.end();
      expect(out.json()[0]).toMatchObject({ transactionId: 't9', traceId: span.spanContext().traceId });
    });
  });
});

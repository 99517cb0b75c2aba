import {
  ArgumentsHost,
  Catch,
  ExceptionFilter,
  HttpException,
  HttpStatus,
  Logger,
  ServiceUnavailableException,
} from '@nestjs/common';
import type { Response } from 'express';
import { isTransientDatabaseError } from './transient-errors';

/** Postgres error codes a user can trigger with valid-looking input. */
const CONFLICT_CODES = new Set(['23505', '23514', '23503']); // unique, check, foreign key

/** numeric_value_out_of_range: a change would take a counter past what its column holds. */
const OUT_OF_RANGE_CODE = '22003';

/** How long a client waits before retrying a request the database could not serve just now. */
const DATABASE_RETRY_AFTER_SECONDS = 1;

/** 503 with `Retry-After`: the service is too busy to take the request now; nothing was done. */
export class RetryLaterException extends ServiceUnavailableException {
  constructor(
    detail: string,
    readonly retryAfterSeconds: number,
  ) {
    super(detail);
  }
}

/**
 * 429 with `Retry-After`: this client asks for more than the service gives one client (a
 * per-customer limit); nothing was done. A retry after `Retry-After` seconds may be served.
 */
export class TooManyRequestsException extends HttpException {
  constructor(
    detail: string,
    readonly retryAfterSeconds: number,
  ) {
    super(detail, HttpStatus.TOO_MANY_REQUESTS);
  }
}

interface ProblemDetails {
  type: string;
  title: string;
  status: number;
  detail?: string;
  errors?: string[];
}

/**
 * Every error as problem-style JSON (RFC 9457). HttpExceptions keep their status; body-parser
 * failures (bad JSON, too large) keep theirs; constraint violations are 409, a number out of range 422; a database that
 * could not serve the request just now (lock or statement timeout, lost connection) is a logged
 * 503 with `Retry-After`; anything else is a logged 500 with no internals in the body.
 */
@Catch()
export class ProblemDetailsFilter implements ExceptionFilter {
  private readonly logger = new Logger('HTTP');

  catch(exception: unknown, host: ArgumentsHost): void {
    const response = host.switchToHttp().getResponse<Response>();
    const problem = this.toProblem(exception);
    // A shed request is the service working as designed under load, not an error to investigate.
    if (problem.status >= 500 && !(exception instanceof RetryLaterException)) {
      if (exception instanceof Error) this.logger.error(exception);
      else this.logger.error(String(exception));
    }
    if (exception instanceof RetryLaterException || exception instanceof TooManyRequestsException) {
      response.setHeader('Retry-After', exception.retryAfterSeconds);
    } else if (isTransientDatabaseError(exception)) response.setHeader('Retry-After', DATABASE_RETRY_AFTER_SECONDS);
    response.status(problem.status).type('application/problem+json').json(problem);
  }

  private toProblem(exception: unknown): ProblemDetails {
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      const body = exception.getResponse();
      const message = typeof body === 'object' && body !== null ? (body as { message?: unknown }).message : body;
      const errors = Array.isArray(message) ? message.map(String) : undefined;
      const detail = typeof message === 'string' ? message : errors ? 'the request is not valid' : undefined;
      return { type: 'about:blank', title: titleOf(status), status, detail, errors };
    }
    const error = exception as { status?: unknown; type?: unknown; code?: unknown; message?: unknown };
    // body-parser errors carry their own 4xx status (malformed JSON, body too large, bad charset).
    if (typeof error?.status === 'number' && error.status >= 400 && error.status < 500) {
      return {
        type: 'about:blank',
        title: titleOf(error.status),
        status: error.status,
        detail:
          error.type === 'entity.parse.failed'
            ? `the body is not valid JSON: ${String(error.message)}`
            : String(error.message),
      };
    }
    if (typeof error?.code === 'string' && CONFLICT_CODES.has(error.code)) {
      return {
        type: 'about:blank',
        title: 'Conflict',
        status: HttpStatus.CONFLICT,
        detail: 'the request conflicts with the current state',
      };
    }
    // The request's own checks refuse such changes with a clear 422 first; this is the backstop
    // for one they miss: the statement failed, so nothing was written.
    if (error?.code === OUT_OF_RANGE_CODE) {
      return {
        type: 'about:blank',
        title: 'Unprocessable Entity',
        status: HttpStatus.UNPROCESSABLE_ENTITY,
        detail: 'the change would take a number past what it may hold',
      };
    }
    // A lock or statement timeout, a lost connection: the request's transaction did not commit
    // (or, if the connection died in COMMIT, a retry with its Idempotency-Key finds what did).
    if (isTransientDatabaseError(exception)) {
      return {
        type: 'about:blank',
        title: 'Service Unavailable',
        status: HttpStatus.SERVICE_UNAVAILABLE,
        detail: 'the database could not serve the request just now; retry it',
      };
    }
    return { type: 'about:blank', title: 'Internal Server Error', status: HttpStatus.INTERNAL_SERVER_ERROR };
  }
}

function titleOf(status: number): string {
  const name = HttpStatus[status] as string | undefined;
  return name
    ? name.toLowerCase().replace(/(^|_)([a-z])/g, (_m, sep: string, c: string) => (sep ? ' ' : '') + c.toUpperCase())
    : 'Error';
}

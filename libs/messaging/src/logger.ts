import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * The subset of Nest's LoggerService the libraries need; Nest's Logger satisfies it. An error
 * that has an Error object logs it as `error({ err }, message)`, which keeps its stack.
 */
export interface Logger {
  log(message: string): void;
  warn(message: string): void;
  error(message: string | { err: unknown }, detail?: string): void;
  debug?(message: string): void;
}

export const silentLogger: Logger = {
  log: () => {},
  warn: () => {},
  error: () => {},
};

/** Fields that name what a log line is about: the checkout (`transactionId`) and the message being handled. */
export interface LogContext {
  transactionId?: string;
  messageId?: string;
  messageType?: string;
}

const logContexts = new AsyncLocalStorage<LogContext>();

/**
 * Runs `work` with a log context of its own (one per delivery, one per HTTP request): every line
 * logged inside it, however deep, carries its fields. The service's logger reads them.
 */
export function withLogContext<R>(fields: LogContext, work: () => R): R {
  return logContexts.run({ ...fields }, work);
}

/** Adds fields to the current log context once they are known (the order id, a decoded message's transaction). */
export function addLogContext(fields: LogContext): void {
  const current = logContexts.getStore();
  if (current) Object.assign(current, fields);
}

/** The fields of the current log context, if any. */
export function currentLogContext(): Readonly<LogContext> | undefined {
  return logContexts.getStore();
}

/** What an error says, for a log line or a header (anything thrown, not only an Error). */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

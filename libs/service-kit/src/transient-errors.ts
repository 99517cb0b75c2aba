/** SQLSTATE classes and codes that mean "try again later", not "this message is bad". */
const TRANSIENT_SQLSTATES = new Set([
  '40001', // serialization_failure
  '40P01', // deadlock_detected
  '53300', // too_many_connections
  '55P03', // lock_not_available (lock_timeout)
  '57014', // query_canceled (statement_timeout)
  '25P03', // idle_in_transaction_session_timeout (the session was ended)
  '57P01', // admin_shutdown (server restarting)
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up)
]);
const TRANSIENT_NODE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH']);
const TRANSIENT_MESSAGES = [
  /connection terminated/i,
  /timeout exceeded when trying to connect/i,
  /connection.*(closed|ended)/i,
  // TypeORM releases a transaction's query runner when its connection fails (the session was
  // ended: idle past idle_in_transaction_session_timeout, a server restart); the next statement says so.
  /query runner already released/i,
];

/** True when a database error comes from the server or the network being unavailable. */
export function isTransientDatabaseError(err: unknown): boolean {
  const error = err as { code?: unknown; driverError?: { code?: unknown }; message?: unknown } | undefined;
  const raw = error?.driverError?.code ?? error?.code;
  const code = typeof raw === 'string' ? raw : '';
  if (TRANSIENT_SQLSTATES.has(code) || code.startsWith('08') || TRANSIENT_NODE_CODES.has(code)) return true;
  const message = typeof error?.message === 'string' ? error.message : '';
  return TRANSIENT_MESSAGES.some((pattern) => pattern.test(message));
}

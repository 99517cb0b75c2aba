import type { DatabaseConfig } from './database.config';

/**
 * Bounds on what one database session can hold up, so a stuck process (paused, wedged, cut off)
 * cannot keep row locks for ever and wedge the checkouts behind them. Milliseconds; 0 turns one off.
 */
export interface SessionLimits {
  /** A statement running longer is cancelled (SQLSTATE 57014). */
  statementTimeoutMs: number;
  /** A transaction left idle (its process paused or stuck between statements) longer: the session is ended, its locks freed (25P03). */
  idleInTransactionTimeoutMs: number;
  /** A statement waiting for a lock longer fails (55P03); the batch is retried, not dead-lettered. */
  lockTimeoutMs: number;
  /** TCP keepalive probes start after the connection is idle this long: a vanished host is noticed by the OS, not never. */
  keepAliveInitialDelayMs: number;
}

/** The defaults: well above any healthy statement or lock wait, well below the prepare deadline (15 s). */
export const DEFAULT_SESSION_LIMITS: SessionLimits = {
  statementTimeoutMs: 30_000,
  idleInTransactionTimeoutMs: 5_000,
  lockTimeoutMs: 5_000,
  keepAliveInitialDelayMs: 10_000,
};

/** The database session limits the settings ask for. */
export function sessionLimits(config: DatabaseConfig): SessionLimits {
  return {
    statementTimeoutMs: config.DB_STATEMENT_TIMEOUT_MS,
    idleInTransactionTimeoutMs: config.DB_IDLE_IN_TRANSACTION_TIMEOUT_MS,
    lockTimeoutMs: config.DB_LOCK_TIMEOUT_MS,
    keepAliveInitialDelayMs: config.DB_KEEPALIVE_INITIAL_DELAY_MS,
  };
}

/** The pg client options for the limits (sent as startup parameters: no statement of their own). */
export function sessionLimitOptions(limits: SessionLimits) {
  return {
    statement_timeout: limits.statementTimeoutMs,
    idle_in_transaction_session_timeout: limits.idleInTransactionTimeoutMs,
    lock_timeout: limits.lockTimeoutMs,
    keepAlive: true,
    keepAliveInitialDelayMillis: limits.keepAliveInitialDelayMs,
  };
}

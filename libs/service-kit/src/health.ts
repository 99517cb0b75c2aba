import type { CheckoutMessaging } from '@shop/checkout-transport';
import type { BrokerConnection } from '@shop/messaging';
import type { DatabaseState } from './management-database';

type Indicator = { status: 'up' | 'down' } & Record<string, unknown>;

/** A probe's answer, shaped as Terminus shapes it: what is up (`info`), what is down (`error`), both (`details`). */
export interface HealthReport {
  status: 'ok' | 'error';
  info: Record<string, Indicator>;
  error: Record<string, Indicator>;
  details: Record<string, Indicator>;
}

function report(indicators: Record<string, Indicator>): HealthReport {
  const entries = Object.entries(indicators);
  const info = Object.fromEntries(entries.filter(([, i]) => i.status === 'up'));
  const error = Object.fromEntries(entries.filter(([, i]) => i.status === 'down'));
  return { status: Object.keys(error).length === 0 ? 'ok' : 'error', info, error, details: indicators };
}

/** Liveness: the process answers. */
export const liveness = (): HealthReport => report({});

export interface ReadinessSources {
  /** The database as the management connection last saw it (see `ManagementDatabase`). */
  database: DatabaseState;
  broker: Pick<BrokerConnection, 'isConnected' | 'address'>;
  /** Absent in an app without messaging. */
  messaging?: Pick<CheckoutMessaging, 'isConsuming'>;
}

/**
 * Readiness: the database answered lately, the broker connection is open (it fails over by
 * itself; meanwhile the service is not ready; `address` says which node it is on), and the
 * service consumes its queue (not before it starts, while it declares its queue again after the
 * broker cancelled its consumer, nor once it stops).
 */
export function readiness({ database, broker, messaging }: ReadinessSources): HealthReport {
  return report({
    database: database.up ? { status: 'up' } : { status: 'down', message: database.reason },
    broker: broker.isConnected ? { status: 'up', address: broker.address } : { status: 'down' },
    consumer: !messaging || messaging.isConsuming ? { status: 'up' } : { status: 'down', consuming: false },
  });
}

import type { DataSource } from 'typeorm';
import type { ServiceName } from '@shop/contracts';
import { CheckoutMessaging } from '@shop/checkout-transport';
import { pruneInbox } from '@shop/inbox';
import { DEFAULT_PACK_LIMITS, type BrokerConnection } from '@shop/messaging';
import type { BaseConfig } from './config';
import type { ServiceMetrics } from './metrics';
import type { Retention } from './retention';
import { isTransientDatabaseError } from './transient-errors';

/**
 * The service's messaging (`CheckoutMessaging`, from the transport lib) as its settings ask,
 * reporting to its metrics; the ids of handled messages are forgotten past retention, so the
 * inbox does not grow without bound.
 */
export function serviceMessaging(
  service: ServiceName,
  config: BaseConfig,
  broker: BrokerConnection,
  dataSource: DataSource,
  metrics: ServiceMetrics,
  retention: Retention,
): CheckoutMessaging {
  retention.register('inbox', () => pruneInbox(dataSource, config.INBOX_RETENTION_HOURS * 3600_000));
  return new CheckoutMessaging({
    service,
    broker,
    dataSource,
    prefetch: config.AMQP_PREFETCH,
    batchSize: config.MESSAGE_BATCH_SIZE,
    maxAttempts: config.MESSAGE_MAX_ATTEMPTS,
    isTransient: isTransientDatabaseError,
    outboxPollIntervalMs: config.OUTBOX_POLL_INTERVAL_MS,
    outboxRetentionMs: config.OUTBOX_RETENTION_HOURS * 3600_000,
    packLimits: { ...DEFAULT_PACK_LIMITS, maxMessages: config.MESSAGE_PACK_MAX },
    onSent: (lagSeconds) => metrics.sent(lagSeconds),
    onSettled: (settlement) => metrics.settled(settlement),
  });
}

import type { Channel } from 'amqplib';

/** Names of the broker objects one service uses; derived in one place so every caller agrees. */
export interface ServiceTopology {
  /** Durable topic exchange for all checkout traffic. */
  exchange: string;
  /**
   * The service's own exchange for rejected messages (`<exchange>.<service>.dlx`), bound to its
   * dead-letter queue. Its own, so that broker permissions let no other user write to it: nobody
   * else can park a message where this service's operator re-drives from.
   */
  deadLetterExchange: string;
  /**
   * Topic exchange a service uses to send a message back to itself: `<service>` → its retry
   * queue, `<service>.redrive` → its queue. A topic exchange, so that broker topic permissions
   * can keep each service to its own keys (the default exchange could reach any queue).
   */
  retryExchange: string;
  /** The service's own queue: receives `<service>.*`. */
  queue: string;
  /** Holds a failed message for its retry delay, then returns it to `queue`. */
  retryQueue: string;
  deadLetterQueue: string;
  /** Binding key on `exchange` (`<service>.*`) and dead-letter routing key (`<service>`). */
  service: string;
  /** Broker-side safety net: a message redelivered this often (e.g. it crashes the process) is dead-lettered. */
  deliveryLimit: number;
  /**
   * Whether `exchange` and `retryExchange`, which every service shares, are declared here (a
   * private exchange, in tests) or only checked, as provisioned by the broker's administrator
   * (the checkout exchanges: no service user may configure them, so none can delete or redeclare
   * them; see brokerPermissions in scripts/lib/config.mjs).
   */
  declaresSharedExchanges: boolean;
}

/** The checkout exchange, provisioned with the broker (see `declaresSharedExchanges`). */
export const CHECKOUT_EXCHANGE = 'checkout';

export function topologyFor(
  service: string,
  options: { exchange?: string; deliveryLimit?: number } = {},
): ServiceTopology {
  const exchange = options.exchange ?? CHECKOUT_EXCHANGE;
  return {
    exchange,
    deadLetterExchange: `${exchange}.${service}.dlx`,
    retryExchange: `${exchange}.retry`,
    queue: `${exchange}.${service}`,
    retryQueue: `${exchange}.${service}.retry`,
    deadLetterQueue: `${exchange}.${service}.dead-letter`,
    service,
    deliveryLimit: options.deliveryLimit ?? 20,
    declaresSharedExchanges: exchange !== CHECKOUT_EXCHANGE,
  };
}

/**
 * Declares this service's exchange and queues, and the shared exchanges or (provisioned) checks
 * that they exist. Idempotent; run on every (re)connect.
 */
export async function declareTopology(channel: Channel, topology: ServiceTopology): Promise<void> {
  for (const shared of [topology.exchange, topology.retryExchange]) {
    if (topology.declaresSharedExchanges) await channel.assertExchange(shared, 'topic', { durable: true });
    else await channel.checkExchange(shared);
  }
  await channel.assertExchange(topology.deadLetterExchange, 'direct', { durable: true });
  await channel.assertQueue(topology.queue, {
    durable: true,
    arguments: {
      'x-queue-type': 'quorum',
      'x-delivery-limit': topology.deliveryLimit,
      'x-dead-letter-exchange': topology.deadLetterExchange,
      'x-dead-letter-routing-key': topology.service,
    },
  });
  await channel.bindQueue(topology.queue, topology.exchange, `${topology.service}.*`);
  await channel.bindQueue(topology.queue, topology.retryExchange, redriveKey(topology));
  // Expired messages go back to the main queue through the retry exchange's re-drive key.
  await channel.assertQueue(topology.retryQueue, {
    durable: true,
    arguments: {
      'x-queue-type': 'quorum',
      'x-dead-letter-exchange': topology.retryExchange,
      'x-dead-letter-routing-key': redriveKey(topology),
    },
  });
  await channel.bindQueue(topology.retryQueue, topology.retryExchange, topology.service);
  await channel.assertQueue(topology.deadLetterQueue, {
    durable: true,
    arguments: { 'x-queue-type': 'quorum' },
  });
  await channel.bindQueue(topology.deadLetterQueue, topology.deadLetterExchange, topology.service);
}

/** Routing key on the retry exchange that puts a message back on the service's own queue. */
export function redriveKey(topology: ServiceTopology): string {
  return `${topology.service}.redrive`;
}

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
   * Topic exchange a service uses to send a message back to itself: `<service>.retry.<delay>ms`
   * → its retry queue of that delay (`retryQueueFor`), `<service>.redrive` → its queue. A topic
   * exchange, so that broker topic permissions can keep each service to its own keys (the default
   * exchange could reach any queue).
   */
  retryExchange: string;
  /** The service's own queue: receives `<service>.*`. */
  queue: string;
  deadLetterQueue: string;
  /** Binding key on `exchange` (`<service>.*`) and dead-letter routing key (`<service>`). */
  service: string;
  /** Broker-side safety net: a message redelivered this often (e.g. it crashes the process) is dead-lettered. */
  deliveryLimit: number;
  /**
   * Whether the broker's administrator provisioned all of it (the checkout exchange: definitions
   * and scripts/lib/rabbitmq.mjs, with its length-limit policies), so the service only checks
   * that it is there: a service user may configure nothing (brokerPermissions in
   * scripts/lib/config.mjs), so it can neither declare a queue or exchange that reaches past its
   * own queues nor delete or redeclare one. A private exchange (tests) is declared here.
   */
  provisioned: boolean;
}

/** The checkout exchange, provisioned with the broker (see `provisioned`). */
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
    deadLetterQueue: `${exchange}.${service}.dead-letter`,
    service,
    deliveryLimit: options.deliveryLimit ?? 20,
    provisioned: exchange === CHECKOUT_EXCHANGE,
  };
}

/**
 * Declares this service's exchanges and queues (a private exchange), or, when they are
 * `provisioned`, checks that each exists and fails with what is missing; the retry queues are the
 * consumer's (`declareRetryQueues`, from its retry policy). Idempotent; run on every (re)connect.
 */
export async function declareTopology(channel: Channel, topology: ServiceTopology): Promise<void> {
  if (topology.provisioned) {
    for (const shared of [topology.exchange, topology.retryExchange, topology.deadLetterExchange])
      await checkProvisioned(channel, 'exchange', shared);
    for (const queue of [topology.queue, topology.deadLetterQueue]) await checkProvisioned(channel, 'queue', queue);
    return;
  }
  for (const shared of [topology.exchange, topology.retryExchange])
    await channel.assertExchange(shared, 'topic', { durable: true });
  await channel.assertExchange(topology.deadLetterExchange, 'direct', { durable: true });
  await channel.assertQueue(topology.queue, { durable: true, arguments: serviceQueueArguments(topology) });
  await channel.bindQueue(topology.queue, topology.exchange, `${topology.service}.*`);
  await channel.bindQueue(topology.queue, topology.retryExchange, redriveKey(topology));
  await channel.assertQueue(topology.deadLetterQueue, {
    durable: true,
    arguments: { 'x-queue-type': 'quorum' },
  });
  await channel.bindQueue(topology.deadLetterQueue, topology.deadLetterExchange, topology.service);
}

/** The arguments of the service's queue (the provisioning in scripts/lib/config.mjs gives the same). */
function serviceQueueArguments(topology: ServiceTopology): Record<string, unknown> {
  return {
    'x-queue-type': 'quorum',
    'x-delivery-limit': topology.deliveryLimit,
    'x-dead-letter-exchange': topology.deadLetterExchange,
    'x-dead-letter-routing-key': topology.service,
  };
}

/**
 * A passive declare: needs no configure permission. A missing object closes the channel (404),
 * so the first one missing ends the check, named, with what to do.
 */
async function checkProvisioned(channel: Channel, kind: 'exchange' | 'queue', name: string): Promise<void> {
  try {
    if (kind === 'exchange') await channel.checkExchange(name);
    else await channel.checkQueue(name);
  } catch (err) {
    throw new Error(
      `the broker has no ${kind} ${name}: the checkout topology is provisioned by the broker's administrator ` +
        `(npm run stack:up, or docker/rabbitmq/definitions.json), not by the service (${(err as Error).message})`,
      { cause: err },
    );
  }
}

/** Routing key on the retry exchange that puts a message back on the service's own queue. */
export function redriveKey(topology: ServiceTopology): string {
  return `${topology.service}.redrive`;
}

/** A retry queue and the key that routes to it on the retry exchange. */
export interface RetryQueue {
  queue: string;
  routingKey: string;
}

/**
 * The retry queue that holds a failed message for `delayMs` and then returns it to the service's
 * queue: `<queue>.retry.<delay>ms`. One per delay, with the delay as its queue-level TTL: a
 * queue's messages expire in order, from its head, so a retry queue holding different delays (the
 * per-message TTLs of old) held a short retry back behind a long one.
 */
export function retryQueueFor(topology: ServiceTopology, delayMs: number): RetryQueue {
  return {
    queue: `${topology.queue}.retry.${delayMs}ms`,
    routingKey: `${topology.service}.retry.${delayMs}ms`,
  };
}

/**
 * Declares (or, provisioned, checks) a retry queue for each delay (`retryDelays` of the consumer's policy). A broker
 * upgraded from before still has the single retry queue of old (`<queue>.retry`, bound with
 * `<service>`): it is left alone, and what it holds still comes back as it expires.
 */
export async function declareRetryQueues(
  channel: Channel,
  topology: ServiceTopology,
  delaysMs: readonly number[],
): Promise<void> {
  for (const delayMs of delaysMs) {
    const { queue, routingKey } = retryQueueFor(topology, delayMs);
    if (topology.provisioned) {
      await checkProvisioned(channel, 'queue', queue);
      continue;
    }
    // Expired messages go back to the main queue through the retry exchange's re-drive key.
    await channel.assertQueue(queue, { durable: true, arguments: retryQueueArguments(topology, delayMs) });
    await channel.bindQueue(queue, topology.retryExchange, routingKey);
  }
}

/** The arguments of a retry queue (the provisioning in scripts/lib/config.mjs gives the same). */
function retryQueueArguments(topology: ServiceTopology, delayMs: number): Record<string, unknown> {
  return {
    'x-queue-type': 'quorum',
    'x-message-ttl': delayMs,
    'x-dead-letter-exchange': topology.retryExchange,
    'x-dead-letter-routing-key': redriveKey(topology),
  };
}

import * as amqp from 'amqplib';
import { randomUUID } from 'node:crypto';
import { routingKey, SERVICE_NAMES, type CheckoutMessage, type ServiceName } from '@shop/contracts';
import { parseBrokerUrls, topologyFor } from '@shop/messaging';
import { schemaOf } from '../../scripts/lib/checkout-invariants.mjs';
import { sql } from './db';
import { requireEnv, testEnv } from './env';
import { eventually } from './eventually';
import { adminChannel, management, vhost } from './rabbitmq';

/**
 * Talking to the running services through the broker, as they talk to each other: publishing a
 * checkout message as a given service's broker user (the AMQP user-id is validated by the broker,
 * so a message "from order" must come through order's own connection), and telling when the
 * queues and outboxes have gone quiet.
 */

/** Every service, as the contracts declare them. */
export const SERVICES: readonly ServiceName[] = SERVICE_NAMES;
/** Each service's schema (its database role's name, as scripts/lib/config.mjs `dbRole` makes it). */
export const SCHEMA_OF = Object.fromEntries(SERVICE_NAMES.map((name) => [name, schemaOf(name)])) as Record<
  ServiceName,
  string
>;

export interface RawMessage {
  routingKey: string;
  messageId: string;
  type: string;
  body: unknown;
}

/** A checkout envelope as a publishable message, routed `<recipient>.<type>`. */
export function asRaw(message: CheckoutMessage): RawMessage {
  return {
    routingKey: routingKey(message.recipient, message.type),
    messageId: message.messageId,
    type: message.type,
    body: message,
  };
}

/**
 * The same logical message re-sent as a new copy: a new message id and send time, the rest
 * unchanged (what a coordinator re-sending a decision, or a participant re-voting, produces).
 */
export function resentCopy<T extends { messageId: string; sentAt: string }>(envelope: T): T {
  return { ...envelope, messageId: randomUUID(), sentAt: new Date().toISOString() };
}

/**
 * Publishes messages to the checkout exchange through `user`'s own connection
 * (<USER>_AMQP_URL), with the properties the services' relays use, and waits for the broker's
 * confirms. A message no queue takes (mandatory) fails the call.
 */
export async function publishAs(
  user: ServiceName | 'admin',
  messages: readonly RawMessage[],
  options: {
    /** The AMQP user-id property: the connecting user by default; null leaves it out (unverified). */
    userId?: string | null;
    headers?: Record<string, unknown>;
  } = {},
): Promise<void> {
  const url = user === 'admin' ? testEnv.amqpAdminUrl : requireEnv(`${user.toUpperCase()}_AMQP_URL`);
  // One node of the list is enough to publish a test message.
  const connection = await amqp.connect(parseBrokerUrls(url)[0]);
  // A publish the broker refuses (permissions) closes the channel; report the broker's reason.
  let refused: Error | undefined;
  try {
    const channel = await connection.createConfirmChannel();
    channel.on('error', (err: Error) => (refused = err));
    const returned: string[] = [];
    channel.on('return', (message: amqp.Message) => returned.push(String(message.properties.messageId)));
    const exchange = topologyFor(user).exchange;
    const userId =
      options.userId === null ? {} : { userId: options.userId ?? decodeURIComponent(new URL(url).username) };
    for (const message of messages) {
      channel.publish(exchange, message.routingKey, Buffer.from(JSON.stringify(message.body)), {
        persistent: true,
        mandatory: true,
        contentType: 'application/json',
        messageId: message.messageId,
        type: message.type,
        timestamp: Math.floor(Date.now() / 1000),
        ...userId,
        headers: options.headers ?? {},
      });
    }
    await channel.waitForConfirms();
    await channel.close();
    if (returned.length) throw new Error(`unroutable message(s): ${returned.join(', ')}`);
  } catch (err) {
    throw refused ?? err;
  } finally {
    await connection.close().catch(() => undefined);
  }
}

/**
 * Runs broker operations as a service's user (its own connection, a confirm channel): 'allowed'
 * if the broker took them all (publishes confirmed), 'refused' if it refused one for the user's
 * permissions (which closes the channel).
 */
export async function attemptAs(
  service: ServiceName,
  work: (channel: amqp.ConfirmChannel) => Promise<unknown>,
): Promise<'allowed' | 'refused' | `error: ${string}`> {
  const connection = await amqp.connect(parseBrokerUrls(requireEnv(`${service.toUpperCase()}_AMQP_URL`))[0]);
  let refusal: Error | undefined;
  try {
    const channel = await connection.createConfirmChannel();
    channel.on('error', (err: Error) => (refusal = err));
    await work(channel);
    await channel.waitForConfirms();
    await channel.close();
    return 'allowed';
  } catch (err) {
    const message = (refusal ?? (err as Error)).message;
    return /ACCESS_REFUSED|access to/i.test(message) ? 'refused' : `error: ${message}`;
  } finally {
    await connection.close().catch(() => undefined);
  }
}

/** The broker objects of every service: main, retry and dead-letter queues. */
export function queuesOf(services: readonly ServiceName[] = SERVICES) {
  return services.map((service) => topologyFor(service));
}

/** Exact numbers of ready messages per queue (queue.declare passive; unacked ones not included). */
export async function readyCounts(queues: readonly string[]): Promise<Record<string, number>> {
  const admin = await adminChannel();
  try {
    const counts: Record<string, number> = {};
    for (const queue of queues) counts[queue] = (await admin.channel.checkQueue(queue)).messageCount;
    return counts;
  } finally {
    await admin.close();
  }
}

interface ManagementQueue {
  messages?: number;
  messages_ready?: number;
  messages_unacknowledged?: number;
  message_stats?: { publish?: number; ack?: number; deliver_get?: number };
}

export async function managementQueue(queue: string): Promise<ManagementQueue> {
  const response = await management(`/api/queues/${encodeURIComponent(vhost())}/${encodeURIComponent(queue)}`);
  if (response.status !== 200) throw new Error(`management API: ${response.status} for queue ${queue}`);
  return (await response.json()) as ManagementQueue;
}

/** The management API's publish counters of the given queues (to tell fresh statistics from stale ones). */
export async function publishCounters(queues: readonly string[]): Promise<Record<string, number>> {
  const counters: Record<string, number> = {};
  for (const queue of queues) counters[queue] = (await managementQueue(queue)).message_stats?.publish ?? 0;
  return counters;
}

/**
 * Waits until the queues are idle: no ready message (exact, queue.declare) and, in the
 * management API's statistics, no ready or unacknowledged one. The statistics lag (they are
 * collected every few seconds), so when `published` says how many messages we put into a queue
 * since `publishedBaseline` was read, the statistics only count once their publish counter shows
 * them — so a stale "0 unacked" from before our messages arrived is never taken for idle.
 */
export async function waitForQueuesIdle(
  queues: readonly string[],
  {
    timeoutMs = 30_000,
    publishedBaseline = {},
    published = {},
  }: {
    timeoutMs?: number;
    publishedBaseline?: Record<string, number>;
    published?: Record<string, number>;
  } = {},
): Promise<void> {
  await eventually(
    async () => {
      const ready = await readyCounts(queues);
      const busy = Object.entries(ready).filter(([, n]) => n > 0);
      if (busy.length) throw new Error(`ready messages: ${JSON.stringify(Object.fromEntries(busy))}`);
      for (const queue of queues) {
        const stats = await managementQueue(queue);
        const expected = (publishedBaseline[queue] ?? 0) + (published[queue] ?? 0);
        if ((stats.message_stats?.publish ?? 0) < expected) {
          throw new Error(
            `${queue}: statistics not yet up to date (publish ${stats.message_stats?.publish ?? 0} < ${expected})`,
          );
        }
        if ((stats.messages ?? 0) > 0 || (stats.messages_unacknowledged ?? 0) > 0) {
          throw new Error(`${queue}: ${stats.messages} message(s), ${stats.messages_unacknowledged} unacked`);
        }
      }
      return true;
    },
    { timeoutMs, intervalMs: 250, what: `queues ${queues.join(', ')} to be idle` },
  );
}

export interface OutboxRow {
  service: ServiceName;
  messageId: string;
  type: string;
  routingKey: string;
  body: CheckoutMessage;
  sentAt: Date | null;
  createdAt: Date;
}

/** Every outbox row (of the three services) that belongs to one transaction, oldest first. */
export async function outboxOf(transactionId: string): Promise<OutboxRow[]> {
  const union = SERVICES.map(
    (service) =>
      `SELECT '${service}' AS service, message_id::text AS message_id, message_type, routing_key, body, sent_at, created_at, id
         FROM ${SCHEMA_OF[service]}.outbox WHERE body->>'transactionId' = $1`,
  ).join(' UNION ALL ');
  const rows = await sql<{
    service: ServiceName;
    message_id: string;
    message_type: string;
    routing_key: string;
    body: CheckoutMessage;
    sent_at: Date | null;
    created_at: Date;
  }>(`${union} ORDER BY created_at, id`, [transactionId]);
  return rows.map((r) => ({
    service: r.service,
    messageId: r.message_id,
    type: r.message_type,
    routingKey: r.routing_key,
    body: r.body,
    sentAt: r.sent_at,
    createdAt: r.created_at,
  }));
}

/** Whether the recipient recorded the message in its inbox (i.e. its handler committed). */
export async function inInbox(recipient: ServiceName, messageId: string): Promise<boolean> {
  const rows = await sql(`SELECT 1 FROM ${SCHEMA_OF[recipient]}.inbox WHERE message_id::text = $1`, [messageId]);
  return rows.length > 0;
}

const recipientOf = (routing: string): ServiceName => routing.split('.')[0] as ServiceName;

/**
 * Waits until everything the services wrote to their outboxes for these transactions has been
 * published AND handled by its recipient (found in the recipient's inbox): the message exchange
 * about them is over. Exact: it reads the committed state, not broker statistics.
 */
export async function waitUntilDelivered(transactionIds: readonly string[], timeoutMs = 30_000): Promise<void> {
  await eventually(
    async () => {
      const outstanding: string[] = [];
      for (const id of transactionIds) {
        for (const row of await outboxOf(id)) {
          if (!row.sentAt) outstanding.push(`${row.service} outbox ${row.type} ${row.messageId} unsent`);
          else if (!(await inInbox(recipientOf(row.routingKey), row.messageId))) {
            outstanding.push(`${row.type} ${row.messageId} (${row.routingKey}) not handled yet`);
          }
        }
      }
      if (outstanding.length === 0) return true;
      throw new Error(outstanding.slice(0, 10).join('; '));
    },
    { timeoutMs, intervalMs: 100, what: `the messages of ${transactionIds.length} transaction(s) to be delivered` },
  );
}

export interface ParkedMessage {
  messageId: string;
  reason: string;
  body: unknown;
}

/**
 * Waits until every given message id sits in `service`'s dead-letter queue, then removes exactly
 * those (other suites' dead letters go back to the queue untouched). Returns them with the
 * reason the consumer recorded.
 */
export async function takeDeadLetters(
  service: ServiceName,
  messageIds: readonly string[],
  timeoutMs = 30_000,
): Promise<ParkedMessage[]> {
  const queue = topologyFor(service).deadLetterQueue;
  const wanted = new Set(messageIds);
  const taken = new Map<string, ParkedMessage>();
  await eventually(
    async () => {
      const connection = await amqp.connect(testEnv.amqpAdminUrl);
      try {
        const channel = await connection.createChannel();
        for (let m = await channel.get(queue); m; m = await channel.get(queue)) {
          const id = String(m.properties.messageId);
          if (!wanted.has(id)) continue; // left unacked: back in the queue when the channel closes
          const headers = (m.properties.headers ?? {}) as Record<string, unknown>;
          const reason = headers['x-dead-letter-reason'];
          taken.set(id, {
            messageId: id,
            reason: typeof reason === 'string' ? reason : JSON.stringify(reason),
            body: JSON.parse(m.content.toString('utf8')) as unknown,
          });
          channel.ack(m);
        }
        await channel.close();
      } finally {
        await connection.close().catch(() => undefined);
      }
      const missing = [...wanted].filter((id) => !taken.has(id));
      if (missing.length === 0) return true;
      throw new Error(`not dead-lettered (yet): ${missing.join(', ')}`);
    },
    { timeoutMs, intervalMs: 200, what: `${messageIds.length} message(s) in ${queue}` },
  );
  return messageIds.map((id) => taken.get(id)!);
}

/** Every message now parked in `service`'s dead-letter queue, left where it is. */
export async function peekDeadLetters(service: ServiceName): Promise<ParkedMessage[]> {
  const queue = topologyFor(service).deadLetterQueue;
  const connection = await amqp.connect(testEnv.amqpAdminUrl);
  try {
    const channel = await connection.createChannel();
    const found: ParkedMessage[] = [];
    for (let m = await channel.get(queue); m; m = await channel.get(queue)) {
      const reason = ((m.properties.headers ?? {}) as Record<string, unknown>)['x-dead-letter-reason'];
      let body: unknown = m.content.toString('utf8');
      try {
        body = JSON.parse(body as string) as unknown;
      } catch {
        /* not JSON: keep the text */
      }
      found.push({
        messageId: String(m.properties.messageId),
        reason: typeof reason === 'string' ? reason : JSON.stringify(reason),
        body,
      });
    }
    await channel.close(); // every message goes back to the queue
    return found;
  } finally {
    await connection.close().catch(() => undefined);
  }
}

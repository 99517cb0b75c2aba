import { randomBytes } from 'node:crypto';
import * as amqp from 'amqplib';
import { testEnv } from './env';

/** A unique exchange name per test, so tests never see each other's messages. */
export function uniqueExchange(prefix: string): string {
  return `test.${prefix}.${randomBytes(4).toString('hex')}`;
}

/** The vhost of the test broker (from TEST_AMQP_ADMIN_URL). */
export function vhost(): string {
  return decodeURIComponent(new URL(testEnv.amqpAdminUrl).pathname.slice(1)) || '/';
}

/** An admin connection for inspecting queues in tests. */
export async function adminChannel(): Promise<{ channel: amqp.Channel; close(): Promise<void> }> {
  const connection = await amqp.connect(testEnv.amqpAdminUrl);
  const channel = await connection.createChannel();
  return {
    channel,
    close: async () => {
      await channel.close().catch(() => undefined);
      await connection.close().catch(() => undefined);
    },
  };
}

/** Takes every message currently in a queue (basic.get), acking each. */
export async function drainQueue(channel: amqp.Channel, queue: string): Promise<amqp.GetMessage[]> {
  const messages: amqp.GetMessage[] = [];
  for (;;) {
    const message = await channel.get(queue, { noAck: true });
    if (!message) return messages;
    messages.push(message);
  }
}

/**
 * Calls the management HTTP API (used to close connections and inspect the broker); `via` picks
 * the node of a cluster whose API answers (any node sees the whole cluster).
 */
export async function management(
  path: string,
  init: RequestInit = {},
  via: string = testEnv.managementUrl,
): Promise<Response> {
  const base = new URL(via);
  const auth = Buffer.from(`${decodeURIComponent(base.username)}:${decodeURIComponent(base.password)}`).toString(
    'base64',
  );
  base.username = '';
  base.password = '';
  return fetch(new URL(path, base), { ...init, headers: { authorization: `Basic ${auth}`, ...(init.headers ?? {}) } });
}

/**
 * Deletes the queues and every queue named after the exchange (`<exchange>.…`: the retry queues,
 * one per delay), then the exchange and every exchange named after it (retry, dead-letter).
 */
export async function deleteExchangeAndQueues(exchange: string, queues: string[]): Promise<void> {
  const namesOf = async (kind: 'exchanges' | 'queues') => {
    const response = await management(`/api/${kind}/${encodeURIComponent(vhost())}?columns=name`);
    return ((await response.json()) as Array<{ name: string }>).map((e) => e.name);
  };
  const namedAfter = (name: string) => name === exchange || name.startsWith(`${exchange}.`);
  const names = await namesOf('exchanges');
  const admin = await adminChannel();
  try {
    for (const queue of new Set([...queues, ...(await namesOf('queues')).filter(namedAfter)])) {
      await admin.channel.deleteQueue(queue).catch(() => undefined);
    }
    for (const name of names.filter(namedAfter)) {
      await admin.channel.deleteExchange(name).catch(() => undefined);
    }
  } finally {
    await admin.close();
  }
}

import { randomUUID } from 'node:crypto';
import type * as amqp from 'amqplib';
import { BrokerConnection, ConfirmPublisher, silentLogger, topologyFor } from '@shop/messaging';
import { attemptAs } from '../support/broker';
import { testEnv } from '../support/env';
import { eventually } from '../support/eventually';
import { adminChannel, management, uniqueExchange, vhost } from '../support/rabbitmq';

/**
 * RabbitMQ checks topic permissions only on a client's own publishes, not on what its exchanges
 * and queues forward or dead-letter: a service that could configure anything could walk around
 * them. So no service may configure anything (the topology is provisioned), every checkout queue
 * has a length limit that refuses publishes when full, and the vhost and users are bounded.
 */
const readyCount = async (queue: string): Promise<number> => {
  const admin = await adminChannel();
  try {
    return (await admin.channel.checkQueue(queue)).messageCount;
  } finally {
    await admin.close();
  }
};

/** Publishes `routingKey` on the checkout exchange on the user's channel. */
const publishOn = (channel: amqp.ConfirmChannel, exchange: string, routingKey: string) =>
  channel.publish(exchange, routingKey, Buffer.from('{}'), { persistent: true, messageId: randomUUID() });

describe('RabbitMQ: no service can route around its topic permissions', () => {
  const target = topologyFor('inventory').queue;

  it('payment cannot declare a fanout exchange, nor bind the checkout exchange to one, to forward decisions to inventory', async () => {
    const before = await readyCount(target);
    const forward = async (channel: amqp.ConfirmChannel) => {
      await channel.assertExchange('checkout.payment.fwd', 'fanout', { durable: false });
      await channel.bindExchange('checkout.payment.fwd', 'checkout', '#');
      publishOn(channel, 'checkout.payment.fwd', 'inventory.decision');
    };
    expect(await attemptAs('payment', forward)).toBe('refused');
    // Nor onto an exchange it may write (its own dead-letter exchange): binding reads `checkout`.
    const bindOwn = (channel: amqp.ConfirmChannel) =>
      channel.bindExchange(topologyFor('payment').deadLetterExchange, 'checkout', 'inventory.*');
    expect(await attemptAs('payment', bindOwn)).toBe('refused');
    expect(await readyCount(target)).toBe(before);
  });

  it('payment cannot declare a queue that dead-letters into the checkout exchange with an inventory key', async () => {
    const before = await readyCount(target);
    const trap = async (channel: amqp.ConfirmChannel) => {
      await channel.assertQueue('checkout.payment.trap', {
        durable: false,
        arguments: {
          'x-dead-letter-exchange': 'checkout',
          'x-dead-letter-routing-key': 'inventory.prepare',
          'x-message-ttl': 0,
        },
      });
      await channel.bindQueue('checkout.payment.trap', 'checkout.retry', 'payment.redrive');
      publishOn(channel, 'checkout.retry', 'payment.redrive');
    };
    expect(await attemptAs('payment', trap)).toBe('refused');
    expect(await readyCount(target)).toBe(before);
  });

  it.each(['order', 'payment', 'inventory'] as const)(
    '%s may configure nothing, not even a queue named like its own',
    async (service) => {
      const own = (channel: amqp.ConfirmChannel) =>
        channel.assertQueue(`checkout.${service}.extra`, { durable: false, arguments: { 'x-message-ttl': 0 } });
      expect(await attemptAs(service, own)).toBe('refused');
    },
  );
});

interface ManagementQueue {
  name: string;
  effective_policy_definition?: Record<string, unknown>;
}

describe('RabbitMQ: the checkout queues, the vhost and the users are bounded', () => {
  it('every provisioned checkout queue has a length limit that refuses publishes when full', async () => {
    const response = await management(
      `/api/queues/${encodeURIComponent(vhost())}?columns=name,effective_policy_definition`,
    );
    const queues = ((await response.json()) as ManagementQueue[]).filter((q) =>
      /^checkout\.(order|payment|inventory)(\.|$)/.test(q.name),
    );
    const services = ['order', 'payment', 'inventory'];
    // Each service: its queue, its dead-letter queue, a retry queue per delay.
    expect(queues.map((q) => q.name)).toEqual(
      expect.arrayContaining(
        services.flatMap((s) => [`checkout.${s}`, `checkout.${s}.dead-letter`, `checkout.${s}.retry.100ms`]),
      ),
    );
    for (const queue of queues) {
      expect({ queue: queue.name, ...queue.effective_policy_definition }).toMatchObject({
        queue: queue.name,
        'max-length': expect.any(Number),
        'max-length-bytes': expect.any(Number),
        overflow: 'reject-publish',
      });
    }
  });

  it('the vhost limits connections and queues, each service user its connections and channels', async () => {
    const vhostLimits = (await (await management(`/api/vhost-limits/${encodeURIComponent(vhost())}`)).json()) as Array<{
      value: Record<string, number>;
    }>;
    expect(vhostLimits[0]?.value).toEqual({ 'max-connections': expect.any(Number), 'max-queues': expect.any(Number) });
    const user = decodeURIComponent(new URL(process.env.PAYMENT_AMQP_URL!.split(',')[0]).username);
    const userLimits = (await (await management(`/api/user-limits/${encodeURIComponent(user)}`)).json()) as Array<{
      value: Record<string, number>;
    }>;
    expect(userLimits[0]?.value).toEqual({ 'max-connections': expect.any(Number), 'max-channels': expect.any(Number) });
  });

  it('a flood past a checkout queue limit is refused with a nack, reported failed to the publisher (the outbox keeps it)', async () => {
    // A checkout queue of this test's own, under the provisioned policy, made small by a policy
    // of higher priority (flooding the real limit would take 100,000 messages).
    const exchange = uniqueExchange('flood');
    const queue = `checkout.flood-${randomUUID()}`;
    const v = encodeURIComponent(vhost());
    const policy = `flood-${randomUUID()}`;
    const admin = await adminChannel();
    try {
      await admin.channel.assertExchange(exchange, 'topic', { durable: false, autoDelete: false });
      await admin.channel.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
      await admin.channel.bindQueue(queue, exchange, '#');
      const provisioned = await management(`/api/queues/${v}/${encodeURIComponent(queue)}`);
      const put = await management(`/api/policies/${v}/${policy}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          pattern: `^${queue.replaceAll('.', '\\.')}$`,
          'apply-to': 'queues',
          priority: 10,
          definition: { 'max-length': 3, overflow: 'reject-publish' },
        }),
      });
      expect([provisioned.status, put.status]).toEqual([200, 201]);
      await waitForPolicy(v, queue, policy);

      const broker = await BrokerConnection.connect({
        urls: [testEnv.amqpAdminUrl],
        connectionName: 'flood (test)',
        logger: silentLogger,
      });
      const publisher = new ConfirmPublisher(broker, exchange);
      await publisher.start();
      try {
        // One at a time, each confirmed before the next. A quorum queue refuses once it holds
        // more than its limit: the publish that crosses it is taken (3 + 1), the next ones nacked.
        const outcomes: string[] = [];
        for (let i = 0; i < 6; i++) {
          const result = await publisher.publish([
            { messageId: randomUUID(), routingKey: 'flood', type: 'test', body: { i } },
          ]);
          outcomes.push(result.failed[0]?.error.name ?? 'confirmed'); // NackedError: basic.nack
        }
        expect(outcomes).toEqual(['confirmed', 'confirmed', 'confirmed', 'confirmed', 'NackedError', 'NackedError']);
        expect(await readyCount(queue)).toBe(4);
      } finally {
        await publisher.stop();
        await broker.close();
      }
    } finally {
      await management(`/api/policies/${v}/${policy}`, { method: 'DELETE' });
      await admin.channel.deleteQueue(queue).catch(() => undefined);
      await admin.channel.deleteExchange(exchange).catch(() => undefined);
      await admin.close();
    }
  });
});

async function waitForPolicy(v: string, queue: string, policy: string): Promise<void> {
  await eventually(
    async () => {
      const response = await management(`/api/queues/${v}/${encodeURIComponent(queue)}`);
      return ((await response.json()) as { policy?: string }).policy === policy;
    },
    { what: `policy ${policy} applied to ${queue}` },
  );
}

import net from 'node:net';
import { randomUUID } from 'node:crypto';
import type * as amqp from 'amqplib';
import {
  adminChannel,
  deleteExchangeAndQueues,
  drainQueue,
  management,
  uniqueExchange,
  vhost,
} from '../../../test/support/rabbitmq';
import { eventually } from '../../../test/support/eventually';
import { testEnv } from '../../../test/support/env';
import {
  BrokerConnection,
  ConfirmPublisher,
  Consumer,
  DeadLetters,
  declareTopology,
  Delivery,
  HEADERS,
  oneAtATime,
  ORIGINAL_USER_ID,
  PoisonMessageError,
  redriveKey,
  retryDelays,
  RetryPolicy,
  retryQueueFor,
  Settlement,
  silentLogger,
  ServiceTopology,
  topologyFor,
} from './index';

interface TestMessage {
  id: string;
  fail?: number;
}

const TEST_RETRY: RetryPolicy = {
  maxAttempts: 3,
  delaysMs: [50, 100],
  isTransient: (err) => (err as Error).message === 'outage',
};

/** A service-like setup on its own exchange: topology, a publisher and a consumer we can steer. */
async function setUp(
  handle: (message: TestMessage, delivery: Delivery) => Promise<void>,
  {
    urls = [testEnv.amqpAdminUrl],
    retry = TEST_RETRY,
    onSettled,
  }: {
    urls?: readonly string[];
    retry?: RetryPolicy;
    onSettled?: (settlement: Settlement<TestMessage>) => void;
  } = {},
) {
  const exchange = uniqueExchange('messaging');
  const topology = topologyFor('svc', { exchange });
  const connectionName = `${exchange} (test)`;
  const broker = await BrokerConnection.connect({ urls, connectionName, logger: silentLogger });
  await broker.onConnect(async (connection) => {
    const channel = await connection.createChannel();
    await declareTopology(channel, topology);
    await channel.close();
  });
  const publisher = new ConfirmPublisher(broker, exchange);
  await publisher.start();
  const consumer = new Consumer<TestMessage>(broker, {
    topology,
    prefetch: 10,
    batchSize: 10,
    retry,
    decode: (parsed) => {
      const body = parsed as TestMessage;
      if (typeof body?.id !== 'string') throw new PoisonMessageError('missing id');
      return body;
    },
    handleBatch: oneAtATime(handle),
    logger: silentLogger,
    onSettled,
  });
  await consumer.start();
  const publish = (body: unknown, messageId = randomUUID()) =>
    publisher.publish([{ messageId, routingKey: 'svc.test', type: 'test', body }]);
  return {
    topology,
    broker,
    publisher,
    consumer,
    publish,
    connectionName,
    async tearDown() {
      await consumer.stop();
      await publisher.stop();
      await broker.close();
      await deleteExchangeAndQueues(exchange, [topology.queue, topology.deadLetterQueue]);
    },
  };
}

/** Takes away every route to the retry queues of TEST_RETRY. */
async function unbindRetryQueues(channel: amqp.Channel, topology: ServiceTopology): Promise<void> {
  for (const delayMs of retryDelays(TEST_RETRY)) {
    const { queue, routingKey } = retryQueueFor(topology, delayMs);
    await channel.unbindQueue(queue, topology.retryExchange, routingKey);
  }
}

async function deadLetters(topology: ServiceTopology) {
  const admin = await adminChannel();
  try {
    return await drainQueue(admin.channel, topology.deadLetterQueue);
  } finally {
    await admin.close();
  }
}

describe('messaging on a real RabbitMQ', () => {
  let env: Awaited<ReturnType<typeof setUp>> | undefined;
  afterEach(async () => {
    await env?.tearDown();
    env = undefined;
  });

  it('declares quorum queues with a delivery limit and a dead-letter route', async () => {
    env = await setUp(async () => {});
    const response = await management(
      `/api/queues/${encodeURIComponent(new URL(testEnv.amqpAdminUrl).pathname.slice(1) || '/')}/${encodeURIComponent(env.topology.queue)}`,
    );
    const queue = (await response.json()) as { type: string; durable: boolean; arguments: Record<string, unknown> };
    expect(queue).toMatchObject({ type: 'quorum', durable: true });
    expect(queue.arguments).toMatchObject({
      'x-delivery-limit': env.topology.deliveryLimit,
      'x-dead-letter-exchange': env.topology.deadLetterExchange,
    });
  });

  it('delivers a confirmed message to the handler and acks it after the handler finished', async () => {
    const handled: string[] = [];
    env = await setUp(async (message) => {
      handled.push(message.id);
    });
    const result = await env.publish({ id: 'a' });
    expect(result.failed).toEqual([]);
    await eventually(() => handled.length === 1, { what: 'the handler to run' });
    await eventually(() => env!.consumer.inFlightCount === 0);
    expect(handled).toEqual(['a']);
  });

  it('reports a message no queue takes as failed instead of dropping it', async () => {
    env = await setUp(async () => {});
    const messageId = randomUUID();
    const result = await env.publisher.publish([{ messageId, routingKey: 'nobody.home', type: 'test', body: {} }]);
    expect(result.confirmed).toEqual([]);
    expect(result.failed).toEqual([
      { messageId, error: expect.objectContaining({ message: expect.stringMatching(/no queue/) }) },
    ]);
  });

  it('publishes on a fresh channel after a nack', async () => {
    env = await setUp(async () => {});
    // A queue that refuses every message: what is routed only there is nacked.
    const blocker = `${env.topology.queue}.blocker`;
    const admin = await adminChannel();
    try {
      await admin.channel.assertQueue(blocker, { arguments: { 'x-max-length': 0, 'x-overflow': 'reject-publish' } });
      await admin.channel.bindQueue(blocker, env.topology.exchange, 'blocked');
      const nacked = await env.publisher.publish([
        { messageId: randomUUID(), routingKey: 'blocked', type: 'test', body: {} },
      ]);
      expect(nacked.failed).toEqual([
        expect.objectContaining({ error: expect.objectContaining({ name: 'NackedError' }) }),
      ]);
      expect((await env.publish({ id: 'next' })).confirmed).toHaveLength(1);
    } finally {
      await admin.channel.deleteQueue(blocker).catch(() => undefined);
      await admin.close();
    }
  });

  it('redelivers a delivery whose retry the broker would not take, instead of leaving it unacked', async () => {
    const calls: Array<{ attempt: number; redelivered: boolean }> = [];
    env = await setUp(async (_message, delivery) => {
      calls.push({ attempt: delivery.attempt, redelivered: delivery.redelivered });
      if (calls.length < 3) throw new Error('transient');
    });
    // No route to the retry queues: each retry comes back unroutable.
    const admin = await adminChannel();
    try {
      await unbindRetryQueues(admin.channel, env.topology);
      await env.publish({ id: 'unroutable-retries' });
      await eventually(() => calls.length === 3 && env!.consumer.inFlightCount === 0, { what: 'the third delivery' });
      expect(calls).toEqual([
        { attempt: 1, redelivered: false },
        { attempt: 1, redelivered: true },
        { attempt: 1, redelivered: true },
      ]);
    } finally {
      await admin.close();
    }
  });

  it('acks the handled messages of a batch, but not one of it whose retry the broker would not take', async () => {
    let openGate!: () => void;
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    const calls: Array<{ id: string; redelivered: boolean }> = [];
    const callsOf = (id: string) => calls.filter((call) => call.id === id);
    env = await setUp(async (message, delivery) => {
      calls.push({ id: message.id, redelivered: delivery.redelivered });
      if (message.id === 'gate') await gate;
      if (message.id === 'unroutable-retry' && callsOf(message.id).length < 2) throw new Error('transient');
    });
    const admin = await adminChannel();
    try {
      await unbindRetryQueues(admin.channel, env.topology);
      // The gate holds the first batch, so the next two are handled together, in this order.
      await env.publish({ id: 'gate' });
      await eventually(() => calls.length === 1, { what: 'the gate in hand' });
      await env.publish({ id: 'unroutable-retry' });
      await env.publish({ id: 'handled' });
      await eventually(() => env!.consumer.inFlightCount === 3, { what: 'both waiting behind the gate' });
      openGate();
      await eventually(() => callsOf('unroutable-retry').length === 2 && env!.consumer.inFlightCount === 0, {
        what: 'the unsettled one redelivered',
      });
      expect(callsOf('unroutable-retry')).toEqual([
        { id: 'unroutable-retry', redelivered: false },
        { id: 'unroutable-retry', redelivered: true },
      ]);
      expect(callsOf('handled')).toEqual([{ id: 'handled', redelivered: false }]);
    } finally {
      await admin.close();
    }
  });

  it('retries a failing handler after a delay and succeeds within the bound', async () => {
    const attempts: number[] = [];
    env = await setUp(async (_message, delivery) => {
      attempts.push(delivery.attempt);
      if (delivery.attempt < 3) throw new Error('transient');
    });
    await env.publish({ id: 'flaky' });
    await eventually(() => attempts.length === 3, { what: 'three attempts' });
    await eventually(() => env!.consumer.inFlightCount === 0);
    expect(attempts).toEqual([1, 2, 3]);
    expect(await deadLetters(env.topology)).toHaveLength(0);
  });

  it('releases each retry after its own delay: a short one is not held back behind a long one', async () => {
    // A transient failure waits the longest delay; a first attempt that fails, the shortest.
    const retry: RetryPolicy = { ...TEST_RETRY, delaysMs: [50, 2_000] };
    const retried: string[] = [];
    const redelivered: string[] = [];
    env = await setUp(
      async (message, delivery) => {
        if (delivery.attempt === 1 && !delivery.headers[HEADERS.lastError]) {
          throw new Error(message.id === 'long' ? 'outage' : 'first attempt fails');
        }
        redelivered.push(message.id);
      },
      { retry, onSettled: (settlement) => settlement.outcome === 'retried' && retried.push(settlement.message!.id) },
    );
    await env.publish({ id: 'long' });
    await eventually(() => retried.includes('long'), { what: 'the long retry to be waiting' });
    await env.publish({ id: 'short' });
    await eventually(() => retried.includes('short'), { what: 'the short retry to be waiting' });
    await eventually(() => redelivered.length === 2, { what: 'both retries back' });
    expect(redelivered).toEqual(['short', 'long']);
  });

  it('starts against a broker that has the single retry queue of old, and still gets back what it holds', async () => {
    const handled: Array<{ id: string; attempt: number }> = [];
    env = await setUp(async (message, delivery) => {
      handled.push({ id: message.id, attempt: delivery.attempt });
    });
    await env.consumer.stop();
    // The retry queue of before (a TTL per message), holding a retry, as an upgraded broker has it.
    const { queue, retryExchange, service } = env.topology;
    const admin = await adminChannel();
    try {
      const old = `${queue}.retry`;
      await admin.channel.assertQueue(old, {
        durable: true,
        arguments: {
          'x-queue-type': 'quorum',
          'x-dead-letter-exchange': retryExchange,
          'x-dead-letter-routing-key': redriveKey(env.topology),
        },
      });
      await admin.channel.bindQueue(old, retryExchange, service);
      admin.channel.publish(retryExchange, service, Buffer.from(JSON.stringify({ id: 'waiting' })), {
        messageId: randomUUID(),
        expiration: '50',
        userId: env.broker.username, // a retry is this service's own re-publish
        headers: { [HEADERS.attempt]: 2, [HEADERS.originalRoutingKey]: 'svc.test' },
      });
    } finally {
      await admin.close();
    }
    await env.consumer.start();
    expect(env.consumer.isConsuming).toBe(true);
    await eventually(() => handled.length === 1, { what: 'the retry of old handled' });
    expect(handled).toEqual([{ id: 'waiting', attempt: 2 }]);
  });

  it('keeps retrying through an outage without using up attempts, and dead-letters nothing', async () => {
    const seen: number[] = [];
    env = await setUp(async (_message, delivery) => {
      seen.push(delivery.attempt);
      if (seen.length <= 6) throw new Error('outage'); // twice the attempt budget
    });
    await env.publish({ id: 'patient' });
    await eventually(() => seen.length === 7, { what: 'the handler to succeed after the outage' });
    await eventually(() => env!.consumer.inFlightCount === 0);
    expect(seen).toEqual([1, 1, 1, 1, 1, 1, 1]);
    expect(await deadLetters(env.topology)).toHaveLength(0);
  });

  it('dead-letters a message whose handler keeps failing, with the reason, after the bounded attempts', async () => {
    let attempts = 0;
    env = await setUp(async () => {
      attempts += 1;
      throw new Error('database says no');
    });
    const messageId = randomUUID();
    await env.publish({ id: 'doomed' }, messageId);
    const [dead] = await eventually(
      async () => {
        const messages = await deadLetters(env!.topology);
        return messages.length ? messages : undefined;
      },
      { what: 'the dead-lettered message' },
    );
    expect(attempts).toBe(3);
    expect(dead.properties.messageId).toBe(messageId);
    expect(dead.properties.headers?.[HEADERS.deadLetterReason]).toMatch(/failed 3 times: database says no/);
    expect(JSON.parse(dead.content.toString())).toEqual({ id: 'doomed' });
  });

  it('sends a poison message straight to the dead-letter queue and still handles the next good one', async () => {
    const handled: string[] = [];
    env = await setUp(async (message) => {
      handled.push(message.id);
    });
    const admin = await adminChannel();
    admin.channel.publish(env.topology.exchange, 'svc.test', Buffer.from('{not json'), { messageId: 'poison-1' });
    await admin.close();
    await env.publish({ id: 'good' });
    await eventually(() => handled.includes('good'), { what: 'the good message' });
    const dead = await eventually(
      async () => {
        const messages = await deadLetters(env!.topology);
        return messages.length ? messages : undefined;
      },
      { what: 'the poison message in the dead-letter queue' },
    );
    expect(dead).toHaveLength(1);
    expect(dead[0].properties.messageId).toBe('poison-1');
    expect(dead[0].properties.headers?.[HEADERS.deadLetterReason]).toMatch(/^invalid message/);
    expect(dead[0].content.toString()).toBe('{not json');
    expect(handled).toEqual(['good']);
  });

  it('lists a parked message with its reason and re-drives it once the cause is fixed', async () => {
    let fixed = false;
    const handled: Array<{ id: string; publisher: string | undefined }> = [];
    env = await setUp(async (message, delivery) => {
      if (!fixed) throw new Error('bug in handler');
      handled.push({ id: message.id, publisher: delivery.userId });
    });
    const messageId = randomUUID();
    await env.publish({ id: 'parked' }, messageId);
    const deadLetters = new DeadLetters(env.broker, env.topology);
    const [parked] = await eventually(
      async () => {
        const listed = await deadLetters.list();
        return listed.length ? listed : undefined;
      },
      { what: 'the message to be parked' },
    );
    expect(parked).toMatchObject({ messageId, routingKey: 'svc.test', body: { id: 'parked' } });
    expect(parked.reason).toMatch(/failed 3 times: bug in handler/);
    expect(await deadLetters.list()).toHaveLength(1); // listing leaves it parked

    fixed = true;
    expect(await deadLetters.redrive([randomUUID()])).toBe(0); // not that one
    expect(await deadLetters.redrive([messageId])).toBe(1);
    await eventually(() => handled.length === 1, { what: 'the re-driven message to be handled' });
    // The publisher the broker validated survives the trip through retry, parking and re-drive.
    expect(handled).toEqual([{ id: 'parked', publisher: new URL(testEnv.amqpAdminUrl).username }]);
    expect(await deadLetters.list()).toEqual([]);
  });

  it('re-drives a parked message the broker validated no publisher of as published by nobody, whatever its headers claim', async () => {
    const handled: Array<{ id: string; publisher: string | undefined }> = [];
    env = await setUp(async (message, delivery) => {
      handled.push({ id: message.id, publisher: delivery.userId });
    });
    const admin = await adminChannel();
    try {
      // What someone else may have parked there (the broker keeps a message's properties when it
      // dead-letters it): no user-id, and a header that names a publisher.
      admin.channel.publish(env.topology.deadLetterExchange, env.topology.service, Buffer.from('{"id":"claims"}'), {
        messageId: randomUUID(),
        headers: { [ORIGINAL_USER_ID]: 'order' },
      });
    } finally {
      await admin.close();
    }
    const deadLetters = new DeadLetters(env.broker, env.topology);
    await eventually(async () => (await deadLetters.list()).length === 1, { what: 'the message to be parked' });
    expect(await deadLetters.redrive()).toBe(1);
    await eventually(() => handled.length === 1, { what: 'the re-driven message to be handled' });
    expect(handled).toEqual([{ id: 'claims', publisher: undefined }]);
  });

  it('re-drives only what was parked when it started, so a message parked again at once does not loop', async () => {
    const handled: string[] = [];
    env = await setUp(async (message) => {
      handled.push(message.id);
      throw new PoisonMessageError('still poison');
    });
    await env.publish({ id: 'poison' });
    const deadLetters = new DeadLetters(env.broker, env.topology);
    await eventually(async () => (await deadLetters.list()).length === 1, { what: 'the message to be parked' });
    expect(await deadLetters.redrive()).toBe(1);
    await eventually(async () => handled.length === 2 && (await deadLetters.list()).length === 1, {
      what: 'the re-driven message to be parked again',
    });
  });

  it('treats an x-attempt header that is not a positive number as the first attempt, so retries still end', async () => {
    const attempts: number[] = [];
    env = await setUp(async (_message, delivery) => {
      attempts.push(delivery.attempt);
      throw new Error('always fails');
    });
    await env.publisher.publish([
      {
        messageId: randomUUID(),
        routingKey: 'svc.test',
        type: 'test',
        body: { id: 'x' },
        headers: { [HEADERS.attempt]: 'many' },
      },
    ]);
    await eventually(async () => (await deadLetters(env!.topology)).length === 1, {
      what: 'the message dead-lettered',
    });
    expect(attempts).toEqual([1, 2, 3]);
  });

  it('believes x-attempt and x-original-routing-key only on its own re-publishes, so a forged count cannot shorten the retries', async () => {
    const seen: Array<{ attempt: number; routingKey: string }> = [];
    env = await setUp(async (_message, delivery) => {
      seen.push({ attempt: delivery.attempt, routingKey: delivery.routingKey });
      throw new Error('always fails');
    });
    // Another publisher (not this consumer's user: here, no user-id) forges the last attempt.
    const admin = await adminChannel();
    try {
      admin.channel.publish(env.topology.exchange, 'svc.test', Buffer.from(JSON.stringify({ id: 'forged' })), {
        messageId: randomUUID(),
        headers: { [HEADERS.attempt]: TEST_RETRY.maxAttempts, [HEADERS.originalRoutingKey]: 'svc.other' },
      });
    } finally {
      await admin.close();
    }
    await eventually(async () => (await deadLetters(env!.topology)).length === 1, {
      what: 'the message dead-lettered',
    });
    expect(seen).toEqual([
      { attempt: 1, routingKey: 'svc.test' },
      { attempt: 2, routingKey: 'svc.test' },
      { attempt: 3, routingKey: 'svc.test' },
    ]);
  });

  it('only checks a provisioned topology (the checkout exchange), and names what the broker lacks', async () => {
    const admin = await adminChannel();
    admin.channel.on('error', () => undefined); // the missing exchange closes the channel
    try {
      await expect(declareTopology(admin.channel, topologyFor('unprovisioned'))).rejects.toThrow(
        /the broker has no exchange checkout\.unprovisioned\.dlx: the checkout topology is provisioned/,
      );
    } finally {
      await admin.close().catch(() => undefined);
    }
    const check = await management(`/api/exchanges/${encodeURIComponent(vhost())}/checkout.unprovisioned.dlx`);
    expect(check.status).toBe(404); // nothing declared, even with the admin's rights
  });

  it('consumes again after the broker cancelled its consumer (queue deleted), declaring the queue again', async () => {
    const handled: string[] = [];
    env = await setUp(async (message) => {
      handled.push(message.id);
    });
    const { queue } = env.topology;
    const consumersOfQueue = async () => {
      const admin = await adminChannel();
      admin.channel.on('error', () => undefined); // a missing queue closes the channel
      try {
        return (await admin.channel.checkQueue(queue)).consumerCount;
      } catch {
        return 0;
      } finally {
        await admin.close();
      }
    };
    expect(env.consumer.isConsuming).toBe(true);
    const admin = await adminChannel();
    try {
      await admin.channel.deleteQueue(queue);
    } finally {
      await admin.close();
    }
    await eventually(async () => (await consumersOfQueue()) === 1 && env!.consumer.isConsuming, {
      what: 'the queue declared again and consumed',
    });
    await env.publish({ id: 'after the cancel' });
    await eventually(() => handled.includes('after the cancel'), { what: 'a message handled after it' });
  });

  it('finishes in-flight handlers before stopping, so nothing is redelivered or lost', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const finished: string[] = [];
    env = await setUp(async (message) => {
      await gate;
      finished.push(message.id);
    });
    await env.publish({ id: 'slow' });
    await eventually(() => env!.consumer.inFlightCount === 1, { what: 'the handler to start' });
    const stopped = env.consumer.stop();
    release();
    await stopped;
    expect(finished).toEqual(['slow']);
    const admin = await adminChannel();
    const { messageCount } = await admin.channel.checkQueue(env.topology.queue);
    await admin.close();
    expect(messageCount).toBe(0);
  });

  it('reconnects after the broker closes its connection and goes on consuming and publishing', async () => {
    const handled: string[] = [];
    env = await setUp(async (message) => {
      handled.push(message.id);
    });
    await env.publish({ id: 'before' });
    await eventually(() => handled.includes('before'));
    await closeConnection(env.connectionName);
    await eventually(() => env!.broker.connectionCount === 2 && env!.broker.isConnected, { what: 'the reconnect' });
    const result = await eventually(
      async () => {
        const r = await env!.publish({ id: 'after' });
        return r.failed.length === 0 ? r : undefined;
      },
      { what: 'a publish on the new connection' },
    );
    expect(result.confirmed).toHaveLength(1);
    await eventually(() => handled.includes('after'), { what: 'consumption on the new connection' });
  });

  it('connects to the first address of the list that answers', async () => {
    const nobody = Object.assign(new URL(testEnv.amqpAdminUrl), { port: String(await closedPort()) }).toString();
    const handled: string[] = [];
    env = await setUp(
      async (message) => {
        handled.push(message.id);
      },
      { urls: [nobody, testEnv.amqpAdminUrl] },
    );
    expect(env.broker.address).toBe(new URL(testEnv.amqpAdminUrl).host);
    await env.publish({ id: 'via-second' });
    await eventually(() => handled.includes('via-second'), { what: 'consumption through the second address' });
  });

  it('fails over to the next address of the list when its connection is lost, and resumes there', async () => {
    // One node under two names: the failover is seen in which address the connection uses.
    const first = new URL(testEnv.amqpAdminUrl);
    const second = Object.assign(new URL(testEnv.amqpAdminUrl), { hostname: 'localhost' });
    const handled: string[] = [];
    env = await setUp(
      async (message) => {
        handled.push(message.id);
      },
      { urls: [first.toString(), second.toString()] },
    );
    expect(env.broker.address).toBe(first.host);
    await closeConnection(env.connectionName);
    await eventually(() => env!.broker.isConnected && env!.broker.connectionCount === 2, { what: 'the failover' });
    expect(env.broker.address).toBe(second.host);
    const result = await eventually(
      async () => {
        const r = await env!.publish({ id: 'after-failover' });
        return r.failed.length === 0 ? r : undefined;
      },
      { what: 'a publish after the failover' },
    );
    expect(result.confirmed).toHaveLength(1);
    await eventually(() => handled.includes('after-failover'), { what: 'consumption after the failover' });
  });

  it('refuses a list whose addresses log in as different users', async () => {
    const other = Object.assign(new URL(testEnv.amqpAdminUrl), { username: 'someone-else' }).toString();
    await expect(
      BrokerConnection.connect({ urls: [testEnv.amqpAdminUrl, other], connectionName: 'mixed', logger: silentLogger }),
    ).rejects.toThrow(/different users/);
  });
});

/** A loopback port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Closes our connection from the broker's side (as a node going away would). */
async function closeConnection(connectionName: string): Promise<void> {
  // The management API lists a new connection after its next stats tick.
  const ours = await eventually(
    async () => {
      const connections = (await (await management('/api/connections')).json()) as Array<{
        name: string;
        client_properties: { connection_name?: string };
      }>;
      const matching = connections.filter((c) => c.client_properties.connection_name === connectionName);
      return matching.length === 1 ? matching : undefined;
    },
    { what: 'our connection in the management API' },
  );
  const closed = await management(`/api/connections/${encodeURIComponent(ours[0].name)}`, { method: 'DELETE' });
  expect(closed.status).toBeLessThan(300);
}

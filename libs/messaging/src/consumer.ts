import type * as amqp from 'amqplib';
import { backoffMs } from './backoff';
import { BatchHandler, BatchQueue, outcomesOf } from './batching';
import { BrokerConnection, ConnectionSetup } from './broker-connection';
import type { Delivery } from './delivery';
import type { BrokerDelivery } from './delivery-tracing';
import { inboundMessages, settleBatch } from './inbound-batch';
import { errorMessage, Logger } from './logger';
import { declaredCount } from './packed-messages';
import { checkRetryPolicy, Republishing, RetryPolicy, retryDelays } from './retry-policy';
import type { Settlement } from './settlement';
import { declareRetryQueues, declareTopology, ServiceTopology } from './topology';

export interface ConsumerOptions<T> {
  topology: ServiceTopology;
  /** Unacked deliveries at once: the batch being handled and the next one gathering. */
  prefetch: number;
  /** At most this many messages are handed to `handleBatch` at once (a packed delivery counts its messages). */
  batchSize: number;
  /** Its delays name the retry queues the consumer declares (one per delay). */
  retry: RetryPolicy;
  /**
   * Turns a message's body (parsed JSON: the consumer parses each delivery once, a pack's messages
   * with it) into a typed message; throws PoisonMessageError (or anything) for an invalid one.
   */
  decode(body: unknown, delivery: Delivery): T;
  /**
   * Handles the deliveries that are waiting (one batch at a time), typically in one database
   * transaction; answers one outcome per entry, in order. A failed one is retried alone later.
   */
  handleBatch: BatchHandler<T>;
  logger: Logger;
  /** A larger body is dead-lettered before it is decoded (default `MAX_MESSAGE_BYTES`). */
  maxMessageBytes?: number;
  /** Called after each message is settled (observability). */
  onSettled?(settlement: Settlement<T>): void;
}

/**
 * The default bound on a body: a checkout message is a few KiB; the broker refuses anything over
 * its `max_message_size` (4 MiB, scripts/lib/config.mjs BROKER_LIMITS), this stops what passes it
 * before JSON.parse spends memory and CPU on it.
 */
export const MAX_MESSAGE_BYTES = 1024 * 1024;

/** Between tries to consume again after the broker cancelled the consumer. */
const CONSUME_AGAIN_BACKOFF = { baseMs: 100, capMs: 5_000 };

/**
 * Consumes the service's queue with manual acks, in batches: the deliveries already prefetched
 * are handed over together (one batch at a time, so batches of one process never wait on each
 * other's locks), and each is acked only after the batch's handler (and so its database
 * transaction) finished. A packed delivery (`packed-messages.ts`) is unpacked: each message it
 * carries is an entry of the batch of its own, and the delivery is acked once all are settled. A
 * failing message is retried alone after a delay through the retry queue of that delay, and
 * dead-lettered with the reason after `retry.maxAttempts`; an undecodable message is
 * dead-lettered at once. Never requeues forever. A whole pack the broker dead-letters (its
 * delivery limit: it keeps crashing the consumer) carries its handled messages too: re-driven,
 * the inbox drops those.
 */
export class Consumer<T> {
  private channel: amqp.ConfirmChannel | undefined;
  private consumerTag: string | undefined;
  private stopping = false;
  private readonly batches: BatchQueue<BrokerDelivery>;
  private readonly republishing: Republishing;
  /** On every (re)connect: the retry queues of the policy, then the channel that consumes. */
  private readonly setup: ConnectionSetup = async (connection) => {
    await this.declare(await connection.createChannel(), { topology: false });
    await this.open(connection.createConfirmChannel());
  };

  constructor(
    private readonly broker: BrokerConnection,
    private readonly options: ConsumerOptions<T>,
  ) {
    checkRetryPolicy(options.retry);
    this.batches = new BatchQueue(
      options.batchSize,
      (batch) => this.processBatch(batch),
      ({ message }) => declaredCount(message),
    );
    const { topology, retry: policy, logger } = options;
    this.republishing = { topology, self: broker.username, policy, logger };
  }

  async start(): Promise<void> {
    this.stopping = false;
    await this.broker.onConnect(this.setup);
  }

  /** Stops taking deliveries, waits for the in-flight handlers to finish and ack, then closes the channel. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.broker.removeSetup(this.setup);
    const channel = this.channel;
    if (channel && this.consumerTag) await channel.cancel(this.consumerTag).catch(() => undefined);
    await this.batches.idle();
    this.channel = undefined;
    await channel?.close().catch(() => undefined);
  }

  /** Whether the queue is being consumed now (false before start, after stop, and while coming back). */
  get isConsuming(): boolean {
    return this.channel !== undefined && this.consumerTag !== undefined;
  }

  get inFlightCount(): number {
    return this.batches.size;
  }

  /** Declares or checks (`declareTopology`; on a channel of its own, closed after) the retry queues, and with `topology` the service's topology first. */
  private async declare(channel: amqp.Channel, { topology }: { topology: boolean }): Promise<void> {
    try {
      if (topology) await declareTopology(channel, this.options.topology);
      await declareRetryQueues(channel, this.options.topology, retryDelays(this.options.retry));
    } finally {
      await channel.close().catch(() => undefined);
    }
  }

  private async open(opening: Promise<amqp.ConfirmChannel>): Promise<void> {
    const channel = await opening;
    channel.on('error', (err: Error) => this.options.logger.warn(`consumer channel error: ${err.message}`));
    channel.on('close', () => {
      if (this.channel === channel) this.channel = undefined;
    });
    await channel.prefetch(this.options.prefetch);
    const { consumerTag } = await channel.consume(this.options.topology.queue, (message) => {
      if (!message) return void this.consumeAgain(channel); // the broker cancelled this consumer
      this.batches.push({ channel, message });
    });
    this.channel = channel;
    this.consumerTag = consumerTag;
  }

  /**
   * The broker cancelled the consumer (its queue was deleted, say): declare the topology again and
   * consume on a fresh channel, backing off from 100 ms to 5 s between tries, until it works, the
   * connection drops (its setup then does the same) or the consumer stops. Meanwhile
   * `isConsuming` is false, and the service is not ready.
   */
  private async consumeAgain(cancelled: amqp.ConfirmChannel): Promise<void> {
    if (this.channel !== cancelled || this.stopping) return;
    this.channel = undefined;
    this.consumerTag = undefined;
    await cancelled.close().catch(() => undefined);
    const { queue } = this.options.topology;
    this.options.logger.warn(`the broker cancelled the consumer of ${queue}; declaring it again`);
    for (let tries = 0; !this.stopping && this.broker.isConnected && !this.channel; tries++) {
      try {
        await this.declare(await this.broker.createChannel(), { topology: true });
        await this.open(this.broker.createConfirmChannel());
        this.options.logger.log(`consuming ${queue} again`);
      } catch (err) {
        this.options.logger.warn(`could not consume ${queue} again (${errorMessage(err)}); trying again`);
        await new Promise((resolve) => setTimeout(resolve, backoffMs(tries, CONSUME_AGAIN_BACKOFF)));
      }
    }
  }

  /**
   * A delivery that could not be settled (its retry or dead-letter was nacked) would stay unacked
   * for as long as its channel lives: close the channel, so the broker delivers it again, and
   * consume on a fresh one (which also sheds a channel's stale view of a quorum queue's leader).
   */
  private async replace(channel: amqp.ConfirmChannel): Promise<void> {
    if (this.channel !== channel) return;
    this.channel = undefined;
    await channel.close().catch(() => undefined);
    if (this.stopping || !this.broker.isConnected) return;
    await this.open(this.broker.createConfirmChannel()).catch((err: unknown) =>
      this.options.logger.warn(
        `consumer channel not reopened (${errorMessage(err)}); it comes back with the connection`,
      ),
    );
  }

  /**
   * Unpacks and decodes the batch's messages (a delivery, or each message a packed one carries),
   * hands the decoded ones to the batch handler together, then settles each message by its
   * outcome and acks each delivery once all it carries are settled (`settleBatch`), all under
   * one span. A delivery that could not be settled gets its channel replaced: the broker
   * delivers it again (what it carried that was handled is then dropped by the inbox).
   */
  private async processBatch(batch: BrokerDelivery[]): Promise<void> {
    const { topology, maxMessageBytes = MAX_MESSAGE_BYTES } = this.options;
    const inbound = inboundMessages(batch, {
      self: this.broker.username,
      queue: topology.queue,
      maxMessageBytes,
      decode: (body, delivery) => this.options.decode(body, delivery),
    });
    const outcomes = inbound.entries.length > 0 ? await outcomesOf(this.options.handleBatch, inbound.entries) : [];
    const unsettled = await settleBatch(inbound, outcomes, {
      to: this.republishing,
      liveChannel: this.channel,
      logger: this.options.logger,
      onSettled: (settlement) => this.options.onSettled?.(settlement),
    });
    for (const channel of unsettled) void this.replace(channel);
  }
}
